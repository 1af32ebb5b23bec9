"""Draft a feature schema from a table of text cells (``ccml schema infer``).

Each column is read with the rules validation applies (``ccml.models.training.validation``), so
a draft always accepts the table it was drafted from:

- **target**: the ``target`` column given, else the one two-valued column whose name says it
  is a label (``label``, ``target``, ``completed``, ...), else the only two-valued column;
  several candidates and no name to tell them apart raise ``AmbiguousTargetError``. Its
  completed value is the one that reads as a success (1, yes, true, pass, ...).
- **ids**: the ``ids`` given, plus columns unique per row (exact duplicate rows aside) whose
  name or text says id; **ignored**: blank or constant columns, and text with too many distinct
  values to be a category. Both end up in ``id_columns`` (columns validation ignores).
- **features**: ``boolean`` (only the tokens validation reads as booleans), ``integer`` and
  ``numeric`` (every cell a finite number; whole numbers are integers), ``ordinal`` (text
  categories that each carry a number, ordered by it: age or deprivation bands), else
  ``categorical`` (at most ``MAX_CATEGORIES`` values, most frequent first).
- **ranges**: the data's min and max, each widened by ``RANGE_MARGIN`` of their span and
  rounded outward (never below 0 when no value is negative), so new data slightly beyond
  the training range is still accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from ccml.core.errors import SchemaError
from ccml.core.schema import Category, Feature, FeatureSchema, Target
from ccml.models.training.validation import BOOLEAN_FALSE, BOOLEAN_TRUE, strip_cells, to_numbers

RANGE_MARGIN: Final = 0.1
MAX_CATEGORIES: Final = 50
_TARGET_NAME = re.compile(r"(label|target|complet|outcome|result|dropout|passed|success|^y$)", re.IGNORECASE)
_ID_NAME = re.compile(r"(^id$|_id$|^id_|[a-z]Id$|ID$|uuid|^key$)")
_SUCCESS = ("1", "1.0", "true", "yes", "y", "completed", "complete", "pass", "passed", "distinction", "success")
# Outcomes that mean the student left: with more than two values, every other one is "completed"
# (OULAD's final_result: Pass, Distinction and Fail all finished the course; Withdrawn did not).
_LEFT = ("withdrawn", "withdrew", "dropout", "dropped", "dropped out", "incomplete", "not completed", "left")
_FIRST_NUMBER = re.compile(r"\d+(\.\d+)?")


class AmbiguousTargetError(SchemaError):
    """Several columns could be the target and nothing tells them apart: the user must choose one."""

    def __init__(self, candidates: Sequence[str]) -> None:
        self.candidates = list(candidates)
        super().__init__(f"cannot tell which column is the target: {', '.join(self.candidates)}; pass --target COL")


@dataclass
class InferredSchema:
    """A drafted schema, and what was guessed about each column (``notes``, keyed by CSV column)."""

    schema: FeatureSchema
    notes: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    rows: int = 0


def api_name(column: str, taken: set[str]) -> str:
    """A feature name for ``column``: lowercase snake_case (``QuizScores`` -> ``quiz_scores``), unique in ``taken``."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", column.strip())
    name = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "feature"
    if name[0].isdigit():
        name = f"f_{name}"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _outward(value: float, step: float, up: bool) -> float:
    digits = max(0, -math.floor(math.log10(step)))
    k = math.ceil(value / step) if up else math.floor(value / step)
    rounded = round(k * step, digits)
    # Float rounding may land a hair inside the data: step on until every value is valid.
    while (up and rounded < value) or (not up and rounded > value):
        k += 1 if up else -1
        rounded = round(k * step, digits)
    return rounded


def widened_range(low: float, high: float, *, integer: bool) -> tuple[float, float]:
    """``[low, high]`` widened by ``RANGE_MARGIN`` of its span on each side, rounded outward to a
    readable step; not below 0 when ``low`` is not negative; whole numbers for integers."""
    margin = (high - low) * RANGE_MARGIN
    step = 10.0 ** math.floor(math.log10(high - low)) / 10 if high > low else 1.0
    if integer:
        step = max(1.0, step)
    lower = _outward(low - margin, step, up=False)
    upper = _outward(high + margin, step, up=True)
    if low >= 0:
        lower = max(0.0, lower)
    return lower, upper


def _counts(text: pd.Series) -> list[tuple[str, int]]:
    counts = text.dropna().value_counts(sort=False)
    # Most frequent first; ties in text order, so the draft is the same on every run.
    return sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda item: (-item[1], item[0]))


def _is_unique(text: pd.Series, unique_rows: pd.Series) -> bool:
    kept = text[unique_rows]
    return bool(kept.notna().all() and kept.is_unique and len(kept) > 1)


def _target_candidates(columns: dict[str, pd.Series]) -> list[str]:
    return [c for c, text in columns.items() if text.notna().all() and text.nunique() == 2]


def _choose_target(columns: dict[str, pd.Series], target: str | None) -> str:
    if target is not None:
        if target not in columns:
            raise SchemaError(f"--target {target!r} is not a column of the file; columns: {', '.join(columns)}")
        return target
    candidates = _target_candidates(columns)
    named = [c for c in candidates if _TARGET_NAME.search(c)]
    if len(named) == 1:
        return named[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SchemaError("no column has exactly two values (and no blanks) to be the target; pass --target COL")
    raise AmbiguousTargetError(named or candidates)


def _success_rank(value: str) -> int:
    lowered = value.strip().lower()
    return _SUCCESS.index(lowered) if lowered in _SUCCESS else len(_SUCCESS)


def _infer_target(column: str, text: pd.Series, notes: list[str]) -> Target:
    values = [v for v, _ in _counts(text)]
    if len(values) < 2:
        raise SchemaError(f"target {column!r} needs two values, found {values}")
    numbers = to_numbers(pd.Series(values))
    numeric = bool(numbers.notna().all() and (numbers % 1 == 0).all())
    successes = [v for v in values if _success_rank(v) < len(_SUCCESS)]
    if len(values) > 2:
        left = [v for v in values if v.strip().lower() in _LEFT]
        if left and len(left) < len(values):
            successes = [v for v in values if v not in left]
            notes.append(f"guessed: every value but {', '.join(left)} means completed")
            return Target(column=column, completed_value=[int(float(v)) if numeric else v for v in successes])
        if not successes:
            raise SchemaError(
                f"target {column!r} has {len(values)} values ({', '.join(values[:10])}) and none reads as "
                "completed; write completed_value yourself"
            )
        notes.append(f"guessed: {', '.join(successes)} mean completed; every other value means not completed")
        completed: Category | list[Category] = [int(float(v)) if numeric else v for v in successes]
        return Target(column=column, completed_value=completed)
    chosen = min(values, key=lambda v: (_success_rank(v), v)) if not numeric else None
    if numeric:
        ints = sorted(int(float(v)) for v in values)
        value: Category = 1 if 1 in ints else ints[-1]
        notes.append(f"guessed: {value} means completed (if it means dropout, set completed_value to the other value)")
        return Target(column=column, completed_value=value)
    assert chosen is not None
    if _success_rank(chosen) == len(_SUCCESS):
        notes.append(f"guessed: {chosen!r} means completed; nothing in the values says which one does")
    return Target(column=column, completed_value=chosen)


def _feature(column: str, text: pd.Series, name: str, notes: list[str]) -> Feature | None:
    present = text.dropna()
    distinct = present.unique()
    if len(distinct) == 0:
        notes.append("ignored: every cell is blank")
        return None
    if len(distinct) == 1:
        notes.append(f"ignored: constant ({distinct[0]!s:.40} in every non-blank row)")
        return None
    lowered = {str(v).lower() for v in distinct}
    if lowered <= BOOLEAN_TRUE | BOOLEAN_FALSE and lowered & BOOLEAN_TRUE and lowered & BOOLEAN_FALSE:
        return Feature(name=name, column=column, type="boolean", example=str(present.iloc[0]).lower() in BOOLEAN_TRUE)
    numbers = to_numbers(present)
    if numbers.notna().all() and bool(numbers.map(math.isfinite).all()):
        if numbers.nunique() == 1:  # "1" and "1.0": two spellings, one number
            notes.append(f"ignored: constant ({numbers.iloc[0]:g} in every non-blank row)")
            return None
        integer = bool((numbers % 1 == 0).all()) and bool((numbers.abs() < 2**53).all())
        low, high = widened_range(float(numbers.min()), float(numbers.max()), integer=integer)
        notes.append(
            f"range: data {numbers.min():g} to {numbers.max():g}, widened by {RANGE_MARGIN:.0%} of the span"
            + (" (not below 0)" if numbers.min() >= 0 else "")
        )
        median = float(numbers.median())
        example: float = round(median) if integer else round(median, 4)
        kind = "integer" if integer else "numeric"
        return Feature(name=name, column=column, type=kind, min=low, max=high, example=example)
    if len(distinct) > MAX_CATEGORIES:
        notes.append(f"ignored: text with {len(distinct)} distinct values, too many for a category (free text?)")
        return None
    categories = [str(v) for v in distinct]
    ranks = [_FIRST_NUMBER.search(c) for c in categories]
    if all(ranks) and len({float(r.group()) for r in ranks if r}) == len(categories):
        ordered = sorted(categories, key=lambda c: float(_FIRST_NUMBER.search(c).group()))  # type: ignore[union-attr]
        notes.append("guessed ordinal: each value carries a number, ordered by it; check the order")
        return Feature(name=name, column=column, type="ordinal", categories=ordered, example=ordered[0])
    by_frequency = [value for value, _ in _counts(text)]
    return Feature(name=name, column=column, type="categorical", categories=by_frequency, example=by_frequency[0])


def infer_schema(
    frame: pd.DataFrame, *, target: str | None = None, ids: Sequence[str] = (), name: str = "inferred"
) -> InferredSchema:
    """Draft a schema for ``frame`` (cells as text, as a data source reads them).

    Raises:
        AmbiguousTargetError: ``target`` is None and several columns could be the target.
        SchemaError: no column can be the target, or a named column does not exist.
    """
    columns = {str(c): strip_cells(frame[c]) for c in frame.columns}
    for column in ids:
        if column not in columns:
            raise SchemaError(f"--id {column!r} is not a column of the file; columns: {', '.join(columns)}")
    target_column = _choose_target({c: t for c, t in columns.items() if c not in ids}, target)
    notes: dict[str, list[str]] = {c: [] for c in columns}
    counts: dict[str, list[tuple[str, int]]] = {}
    target_spec = _infer_target(target_column, columns[target_column], notes[target_column])
    counts[target_column] = _counts(columns[target_column])
    unique_rows = ~frame.duplicated()
    id_columns: list[str] = list(ids)
    features: list[Feature] = []
    taken: set[str] = set()
    for column, text in columns.items():
        if column == target_column or column in ids:
            continue
        numeric_text = bool(to_numbers(text.dropna()).notna().all())
        if _is_unique(text, unique_rows) and (_ID_NAME.search(column) or not numeric_text):
            notes[column].append("id: unique per row")
            id_columns.append(column)
            continue
        feature = _feature(column, text, api_name(column, taken), notes[column])
        if feature is None:
            id_columns.append(column)
            continue
        if feature.has_categories:
            counts[column] = _counts(text)
        features.append(feature)
    if not features:
        raise SchemaError("no column can be a feature: every column is the target, an id, blank or constant")
    schema = FeatureSchema(name=name, id_columns=id_columns, target=target_spec, features=features)
    return InferredSchema(schema, {c: n for c, n in notes.items() if n}, counts, rows=len(frame))
