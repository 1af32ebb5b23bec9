"""Validate a raw training table against the feature schema, reporting every problem at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import structlog

from ccml.core.errors import DataValidationError, ValidationIssue
from ccml.core.schema import Feature, FeatureSchema
from ccml.core.types import Dataset, ValidatedTable

log = structlog.get_logger(__name__)

MAX_ROWS_REPORTED = 5
_TRUE = frozenset({"true", "yes", "1", "1.0"})
_FALSE = frozenset({"false", "no", "0", "0.0"})


class _Issues:
    def __init__(self) -> None:
        self.items: list[ValidationIssue] = []

    def add(self, column: str, problem: str, mask: pd.Series | None = None, count: int = 1) -> None:
        rows: tuple[int, ...] = ()
        if mask is not None:
            count = int(mask.sum())
            if count == 0:
                return
            # Row numbers are 1-based positions of data rows (the header is not a row).
            rows = tuple(int(i) + 1 for i in mask.index[mask.to_numpy()][:MAX_ROWS_REPORTED])
        self.items.append(ValidationIssue(column, problem, count, rows))


def _strip(series: pd.Series) -> pd.Series:
    text = series.astype("string").str.strip()
    return text.mask(text == "")


def _to_numbers(text: pd.Series) -> pd.Series:
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _numeric(feature: Feature, text: pd.Series, issues: _Issues) -> pd.Series:
    values = _to_numbers(text)
    present = text.notna()
    issues.add(feature.column, "not a number", present & values.isna())
    issues.add(feature.column, "not finite", present & np.isinf(values))
    values = values.where(np.isfinite(values))
    if feature.type == "integer":
        issues.add(feature.column, "not a whole number", values.notna() & (values % 1 != 0))
    low, high = feature.bounds
    issues.add(feature.column, f"outside the valid range [{low:g}, {high:g}]", (values < low) | (values > high))
    return values


def _boolean(feature: Feature, text: pd.Series, issues: _Issues) -> pd.Series:
    lowered = text.str.lower()
    values = pd.Series(np.nan, index=text.index, dtype="float64")
    values[lowered.isin(_TRUE).fillna(False).astype(bool)] = 1.0
    values[lowered.isin(_FALSE).fillna(False).astype(bool)] = 0.0
    issues.add(feature.column, "not a boolean (true/false, yes/no, 1/0)", text.notna() & values.isna())
    return values


def _category_values(feature: Feature, text: pd.Series) -> pd.Series:
    """Cells converted to the categories' type (int or str); unconvertible cells stay text."""
    if isinstance(feature.category_list[0], int):
        numbers = _to_numbers(text)
        whole = numbers.notna() & (numbers % 1 == 0)
        converted = text.astype(object).where(~whole, numbers.where(whole).astype("Int64").astype(object))
        return converted.where(text.notna(), None)
    return text.astype(object).where(text.notna(), None)


def _categorical(feature: Feature, text: pd.Series, issues: _Issues) -> pd.Series:
    values = _category_values(feature, text)
    known = values.isin(feature.category_list)
    unknown = text.notna() & ~known
    if unknown.any():
        samples = ", ".join(repr(v) for v in pd.unique(text[unknown])[:3])
        issues.add(feature.column, f"unknown category ({samples}); known: {feature.categories}", unknown)
    return values.where(known, None)


def _target(schema: FeatureSchema, text: pd.Series, issues: _Issues) -> pd.Series:
    column = schema.target.column
    issues.add(column, "target value missing", text.isna())
    completed = schema.target.completed_value
    if isinstance(completed, int):
        numbers = _to_numbers(text)
        issues.add(column, "target value is not a number", text.notna() & numbers.isna())
        values: pd.Series = numbers
    else:
        values = text
    distinct = pd.unique(values.dropna())
    if len(distinct) > 2:
        shown = ", ".join(map(str, sorted(map(str, distinct))[:5]))
        issues.add(column, f"target is not binary: {len(distinct)} distinct values ({shown})")
    return (values == completed).astype("int8")


def _drop_duplicates(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """``frame.drop_duplicates()``, skipping the all-column comparison when it cannot find any.

    Rows that differ in one column are not duplicates, so an id column whose cells are all
    distinct (missing cells count as equal, as in ``drop_duplicates``) proves there are none.
    Checking it hashes one column instead of every one (1,000,000 rows: 0.3 s instead of 3.6 s).
    """
    for column in schema.id_columns:
        if column in frame.columns and frame[column].is_unique:
            return frame
    return frame.drop_duplicates()


def validate(dataset: Dataset, schema: FeatureSchema, *, min_rows: int = 50) -> ValidatedTable:
    """Check and type a raw table; raise ``DataValidationError`` listing every problem.

    Exact duplicate rows (all columns, ids included) are dropped first and counted, so
    repeated records can neither inflate the holdout score nor hide in both splits.
    """
    frame = dataset.frame
    issues = _Issues()
    rows_read = len(frame)
    if rows_read == 0:
        issues.add("(table)", "no data rows")

    missing_columns = [column for column in schema.columns if column not in frame.columns]
    for column in missing_columns:
        issues.add(column, "required column is missing")
    known = set(schema.columns) | set(schema.id_columns)
    ignored = [str(c) for c in frame.columns if c not in known]
    if ignored:
        log.warning("columns_ignored", columns=ignored)

    deduplicated = _drop_duplicates(frame, schema)
    duplicates = rows_read - len(deduplicated)

    features: dict[str, pd.Series[Any]] = {}
    for feature in schema.features:
        if feature.column not in deduplicated.columns:
            continue
        text = _strip(deduplicated[feature.column])
        if feature.type in ("numeric", "integer"):
            features[feature.name] = _numeric(feature, text, issues)
        elif feature.type == "boolean":
            features[feature.name] = _boolean(feature, text, issues)
        else:
            features[feature.name] = _categorical(feature, text, issues)

    target = pd.Series(dtype="int8")
    if schema.target.column in deduplicated.columns:
        target = _target(schema, _strip(deduplicated[schema.target.column]), issues)
        positives = int(target.sum())
        negatives = len(target) - positives
        if len(target) and min(positives, negatives) < 2:
            issues.add(
                schema.target.column,
                f"needs at least 2 rows of each class, found {positives} completed and {negatives} not completed",
            )
    if 0 < len(deduplicated) < min_rows:
        issues.add(
            "(table)",
            f"only {len(deduplicated)} rows after dropping {duplicates} duplicates; at least {min_rows} needed",
        )

    if issues.items:
        raise DataValidationError(issues.items)
    table = pd.DataFrame(features).reset_index(drop=True)
    log.info("data_validated", rows_read=rows_read, duplicates_dropped=duplicates, rows_used=len(table))
    return ValidatedTable(
        features=table,
        target=target.to_numpy(dtype=np.int8),
        schema=schema,
        fingerprint=dataset.fingerprint,
        source=dataset.source,
        rows_read=rows_read,
        duplicates_dropped=duplicates,
    )
