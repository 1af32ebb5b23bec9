"""Read the schema's group columns from a training table: what the fairness evaluation reports on.

Groups are reported on, never validated: a blank cell, or one outside the group's categories,
makes the row part of the group ``MISSING_GROUP`` instead of an error, and a training file
without a group's column skips that group with a note (the engagement data has no demographics).
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import structlog

from ccml.core.schema import FeatureSchema, Group

log = structlog.get_logger(__name__)

# The group value of a row whose group cell is blank or not one of the group's categories.
MISSING_GROUP: Final = "(missing)"
_NAME_CHARS: Final = 60


def _group_values(group: Group, series: pd.Series) -> pd.Series:
    text = series.astype("string").str.strip()
    text = text.mask(text == "")
    if group.categories is None:
        return text.astype(object).where(text.notna(), MISSING_GROUP).astype(str)
    if isinstance(group.categories[0], int):
        # "1.0" and " 1" are the category 1, as validation reads integer categories.
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        whole = ((numbers % 1 == 0) & (numbers.abs() < 2**53)).fillna(False).astype(bool)
        text = text.where(~whole, numbers.where(whole, 0).astype("int64").astype("string"))
    known = text.isin([str(c) for c in group.categories]).fillna(False).astype(bool)
    return text.astype(object).where(known, MISSING_GROUP).astype(str)


def read_groups(frame: pd.DataFrame, schema: FeatureSchema) -> tuple[pd.DataFrame | None, tuple[str, ...]]:
    """The declared group columns ``frame`` has, as text named by group (row for row, index reset),
    and a note for each declared group whose column it lacks; ``(None, ())`` without groups."""
    if not schema.groups:
        return None, ()
    found = {
        group.name: _group_values(group, frame[group.column]).reset_index(drop=True)
        for group in schema.groups
        if group.column in frame.columns
    }
    absent = tuple(
        f"{group.name}: column {group.column[:_NAME_CHARS]!r} is not in the training file"
        for group in schema.groups
        if group.column not in frame.columns
    )
    if absent:
        log.info("fairness_groups_skipped", groups=list(absent))
    return (pd.DataFrame(found, dtype=object) if found else None), absent
