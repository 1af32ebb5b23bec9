"""Outcomes joined onto the feature table: from a labels file (on the entity id) or from the log itself."""

from __future__ import annotations

import pandas as pd
import structlog

from ccml.activity.aggregation import require_columns
from ccml.core.activity import ActivitySchema
from ccml.core.errors import DataValidationError, ValidationIssue

log = structlog.get_logger(__name__)

MAX_IDS_SHOWN = 5


def _ids(values: pd.Series) -> str:
    shown = ", ".join(map(str, values.iloc[:MAX_IDS_SHOWN]))
    return shown + (", ..." if len(values) > MAX_IDS_SHOWN else "")


def join_labels(schema: ActivitySchema, table: pd.DataFrame, labels: pd.DataFrame | None) -> pd.DataFrame:
    """``table`` with the label column, every row labelled; every problem reported at once.

    Unlabelled entities and labels without any event in the log are problems unless the
    declaration says to drop them (``labels_without_logs`` / ``logs_without_labels``): a labels
    file often covers more courses than the log at hand.

    Raises:
        DataValidationError: missing columns, duplicate or blank ids, or unmatched rows that are errors.
    """
    declared = schema.labels
    entity = schema.entity
    if declared.source == "log":
        return table
    if labels is None:
        raise DataValidationError([ValidationIssue("(labels)", "the schema takes labels from a file: give one")])
    require_columns(labels, (entity, declared.column), "labels")
    issues: list[ValidationIssue] = []
    ids = labels[entity].astype("string").str.strip()
    outcome = labels[declared.column].astype("string").str.strip()
    blank = ids.isna() | (ids == "")
    if blank.any():
        issues.append(ValidationIssue(entity, "blank entity id in the labels", int(blank.sum())))
    repeated = ids[ids.duplicated(keep=False) & ~blank]
    if len(repeated):
        issues.append(
            ValidationIssue(
                entity, f"entity labelled more than once (e.g. {_ids(repeated.drop_duplicates())})", len(repeated)
            )
        )
    known = pd.DataFrame({entity: ids, declared.column: outcome})[~blank].drop_duplicates(entity)
    seen = pd.Index(table[entity].astype(str).unique())
    labelled = pd.Index(known[entity].astype(str))
    without_logs = labelled.difference(seen)
    without_labels = seen.difference(labelled)
    for missing, policy, what in (
        (without_logs, declared.labels_without_logs, "labelled entity with no event in the log (give the enrollments)"),
        (without_labels, declared.logs_without_labels, "entity in the log without a label"),
    ):
        if len(missing) and policy == "error":
            issues.append(ValidationIssue(entity, f"{what} (e.g. {_ids(pd.Series(missing))})", len(missing)))
        elif len(missing):
            log.info("entities_dropped", reason=what, count=len(missing))
    if issues:
        raise DataValidationError(issues)
    joined = table.merge(known, on=entity, how="inner", validate="many_to_one")
    return joined.reset_index(drop=True)
