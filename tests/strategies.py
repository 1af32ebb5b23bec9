"""Hypothesis strategies built from a ``FeatureSchema``: valid records and frames (in range,
with missing values and unseen categories on demand) and invalid cells per column."""

from __future__ import annotations

import string
from typing import Any

import pandas as pd
from hypothesis import strategies as st

from ccml.core.schema import Feature, FeatureSchema

# Cells the CSV reader (or pandas' number parser) would read as missing or as a number.
_AMBIGUOUS_TEXT = frozenset({"nan", "na", "n/a", "null", "none", "inf", "infinity", "true", "false"})


def _letters(min_size: int = 1) -> st.SearchStrategy[str]:
    return st.text(alphabet=string.ascii_letters, min_size=min_size, max_size=12).filter(
        lambda text: text.lower() not in _AMBIGUOUS_TEXT
    )


def valid_value(feature: Feature) -> st.SearchStrategy[Any]:
    """A value the schema accepts for ``feature`` (never missing)."""
    if feature.has_categories:
        return st.sampled_from(feature.category_list)
    if feature.type == "boolean":
        return st.booleans()
    low, high = feature.bounds
    if feature.type == "integer":
        return st.integers(int(low), int(high))
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def unseen_category(feature: Feature) -> st.SearchStrategy[Any]:
    """A category the schema does not list, of the same kind (int or str) as its categories."""
    categories = feature.category_list
    if isinstance(categories[0], int):
        return st.integers(-(10**6), 10**6).filter(lambda value: value not in categories)
    known = {str(c).strip() for c in categories}
    return _letters().filter(lambda text: text not in known)


def feature_value(feature: Feature, *, missing: bool = False, unseen: bool = False) -> st.SearchStrategy[Any]:
    """A valid value, optionally also None (missing) or an unseen category."""
    choices = [valid_value(feature)]
    if missing:
        choices.append(st.none())
    if unseen and feature.has_categories:
        choices.append(unseen_category(feature))
    return st.one_of(choices)


def records(schema: FeatureSchema, *, missing: bool = False, unseen: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """One prediction record keyed by feature name."""
    return st.fixed_dictionaries({f.name: feature_value(f, missing=missing, unseen=unseen) for f in schema.features})


def frames(
    schema: FeatureSchema, *, min_rows: int = 1, max_rows: int = 30, missing: bool = True, unseen: bool = True
) -> st.SearchStrategy[pd.DataFrame]:
    """A frame of records with the schema's feature names as columns, in schema order."""
    return st.lists(records(schema, missing=missing, unseen=unseen), min_size=min_rows, max_size=max_rows).map(
        lambda rows: pd.DataFrame(rows, columns=schema.feature_names)
    )


def invalid_cell(feature: Feature) -> st.SearchStrategy[str]:
    """A CSV cell (text) that validation must reject for ``feature``."""
    garbage = _letters().map(lambda text: "x" + text)
    if feature.has_categories:
        return unseen_category(feature).map(str)
    if feature.type == "boolean":
        return garbage
    low, high = feature.bounds
    # The filters drop -0.0, which hypothesis may draw "below" 0.0 but which equals it.
    out_of_range = st.one_of(
        st.floats(max_value=low, exclude_max=True, allow_nan=False, allow_infinity=False).filter(lambda x: x < low),
        st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False).filter(lambda x: x > high),
    ).map(repr)
    choices = [garbage, out_of_range, st.sampled_from(["inf", "-inf"])]
    if feature.type == "integer":
        choices.append(st.floats(low, high - 1, allow_nan=False).filter(lambda x: x % 1 != 0).map(repr))
    return st.one_of(choices)


def invalid_target_cell(schema: FeatureSchema) -> st.SearchStrategy[str]:
    """A target cell that is neither of the two classes."""
    completed = schema.target.completed_value
    if isinstance(completed, int):
        return st.one_of(
            st.integers(2, 10**6).map(str), st.integers(-(10**6), -1).map(str), _letters().map(lambda t: "x" + t)
        )
    return _letters().filter(lambda text: text != completed).map(lambda text: "x" + text)


def invalid_column_cell(schema: FeatureSchema) -> st.SearchStrategy[tuple[str, str]]:
    """(source column, bad cell) for any feature column or the target column."""
    by_feature = [invalid_cell(f).map(lambda cell, column=f.column: (column, cell)) for f in schema.features]
    target = invalid_target_cell(schema).map(lambda cell: (schema.target.column, cell))
    return st.one_of([*by_feature, target])
