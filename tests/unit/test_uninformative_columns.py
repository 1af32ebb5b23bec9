"""Blank and constant feature columns: refused by validation unless the schema marks them optional.

The model would learn nothing from such a column, and the promotion gate, which scores the
champion on the challenger's (equally crippled) holdout, would not notice.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccml.core.errors import DataValidationError
from ccml.core.schema import FeatureSchema, load_schema
from ccml.models.training.synthetic import generate
from ccml.models.training.validation import validate
from tests.helpers import column_of_type, dataset_from_frame, labelled_source, only_issue, validation_issues
from tests.strategies import frames

# Strategies are built at collection time, so the schema is loaded here rather than by a fixture.
SCHEMA = load_schema()


@pytest.fixture
def frame(sample_frame: pd.DataFrame) -> pd.DataFrame:
    return sample_frame.head(200).astype(object).copy()


def _optional(schema: FeatureSchema, *columns: str) -> FeatureSchema:
    data = schema.model_dump(mode="json")
    for feature in data["features"]:
        if feature["column"] in columns:
            feature["optional"] = True
    return FeatureSchema.from_dict(data)


def _feature_columns(schema: FeatureSchema) -> list[str]:
    """One column of each feature type the schema has."""
    return list({f.type: f.column for f in schema.features}.values())


@pytest.mark.parametrize("blank", [None, "", "NaN", "  "])
def test_blank_feature_column_is_refused_naming_it(frame: pd.DataFrame, schema: FeatureSchema, blank: str) -> None:
    for column in _feature_columns(schema):
        bad = frame.copy()
        bad[column] = blank
        issue = only_issue(validation_issues(bad, schema), column)
        assert "every value is missing" in issue.problem
        assert "optional = true" in issue.problem
        assert issue.count == len(frame)


def test_constant_feature_column_is_refused_naming_it_and_its_value(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    for feature in schema.features:
        bad = frame.copy()
        value = feature.example_value()
        bad[feature.column] = value
        bad.loc[[3, 7], feature.column] = None  # blanks do not make a column informative
        issue = only_issue(validation_issues(bad, schema), feature.column)
        assert issue.problem.startswith("constant: every non-blank cell is")
        assert str(value).lower() in issue.problem.lower()


def test_constant_column_spelled_differently_is_still_constant(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = column_of_type(schema, "integer")
    frame[column] = ["3", "3.0", " 3", "3.00"] * (len(frame) // 4)
    assert only_issue(validation_issues(frame, schema), column).problem.startswith("constant")


def test_column_with_invalid_cells_is_not_also_called_constant(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = column_of_type(schema, "numeric")
    frame[column] = "5"
    frame.loc[0, column] = "lots"
    issue = only_issue(validation_issues(frame, schema), column)
    assert "not a number" in issue.problem


def test_two_distinct_values_are_enough(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = column_of_type(schema, "numeric")
    frame[column] = 5
    frame.loc[0, column] = 6
    validate(dataset_from_frame(frame), schema)


@pytest.mark.parametrize("kind", ["blank", "constant"])
def test_optional_feature_may_be_blank_or_constant(frame: pd.DataFrame, schema: FeatureSchema, kind: str) -> None:
    column = column_of_type(schema, "numeric")
    frame[column] = None if kind == "blank" else 5
    relaxed = _optional(schema, column)
    table = validate(dataset_from_frame(frame), relaxed)
    name = next(f.name for f in relaxed.features if f.column == column)
    values = table.features[name]
    assert values.isna().all() if kind == "blank" else (values == 5).all()
    # The same file against the schema without the declaration is refused.
    assert only_issue(validation_issues(frame, schema), column)


@given(frame=frames(SCHEMA, min_rows=4, max_rows=30, unseen=False), data=st.data())
def test_valid_rows_are_refused_exactly_for_their_blank_or_constant_columns(
    frame: pd.DataFrame, data: st.DataObject
) -> None:
    n = len(frame)
    positives = data.draw(st.integers(2, n - 2))
    source = labelled_source(SCHEMA, frame, positives)
    uninformative = {f.column for f in SCHEMA.features if frame[f.name].dropna().nunique() < 2}
    if not uninformative:
        assert validate(dataset_from_frame(source), SCHEMA, min_rows=4).rows == n
        return
    with pytest.raises(DataValidationError) as caught:
        validate(dataset_from_frame(source), SCHEMA, min_rows=4)
    assert {issue.column for issue in caught.value.issues} == uninformative
    relaxed = _optional(SCHEMA, *uninformative)
    assert validate(dataset_from_frame(source), relaxed, min_rows=4).rows == n


def test_constancy_is_judged_on_every_row_not_only_the_first(schema: FeatureSchema) -> None:
    frame = generate(schema, 2500, seed=5).astype(object)
    column = column_of_type(schema, "numeric")
    frame[column] = 5
    assert only_issue(validation_issues(frame, schema), column).problem.startswith("constant")
    frame.loc[len(frame) - 1, column] = 6
    validate(dataset_from_frame(frame), schema)
