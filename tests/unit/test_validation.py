from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccml.core.errors import DataValidationError
from ccml.core.schema import FeatureSchema
from ccml.models.training.validation import MAX_ROWS_REPORTED, validate
from tests.helpers import column_of_type, dataset_from_frame, only_issue, validation_issues

SMALL = 200


@pytest.fixture
def frame(sample_frame: pd.DataFrame) -> pd.DataFrame:
    """A small valid table whose cells may be replaced by text."""
    return sample_frame.head(SMALL).astype(object).copy()


def _string_categorical_column(schema: FeatureSchema) -> str:
    return next(f.column for f in schema.features if f.type == "categorical" and isinstance(f.category_list[0], str))


def test_valid_table_is_typed_with_feature_names(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    table = validate(dataset_from_frame(frame), schema)
    assert list(table.features.columns) == schema.feature_names
    assert table.rows == len(frame)
    assert set(np.unique(table.target)) == {0, 1}
    expected_positives = int((frame[schema.target.column] == schema.target.completed_value).sum())
    assert int(table.target.sum()) == expected_positives
    for feature in schema.features:
        column = table.features[feature.name]
        if feature.type in ("numeric", "integer"):
            assert column.dtype == np.float64
            low, high = feature.bounds
            assert column.dropna().between(low, high).all()
        else:
            assert set(column.dropna()) <= set(feature.category_list)


def test_missing_feature_values_are_kept_as_missing(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = column_of_type(schema, "numeric")
    frame.loc[3, column] = None
    table = validate(dataset_from_frame(frame), schema)
    name = next(f.name for f in schema.features if f.column == column)
    assert np.isnan(table.features.loc[3, name])


def test_missing_column_is_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = schema.features[2].column
    issue = only_issue(validation_issues(frame.drop(columns=[column]), schema), column)
    assert "missing" in issue.problem


def test_missing_target_column_is_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    issue = only_issue(validation_issues(frame.drop(columns=[schema.target.column]), schema), schema.target.column)
    assert "missing" in issue.problem


def test_text_in_numeric_column_is_reported_with_row_number(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = column_of_type(schema, "numeric")
    frame.loc[4, column] = "lots"
    issue = only_issue(validation_issues(frame, schema), column)
    assert "not a number" in issue.problem
    assert issue.rows == (5,)  # 1-based data row, header not counted
    assert issue.count == 1


def test_out_of_range_value_is_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    feature = next(f for f in schema.features if f.type == "numeric")
    frame.loc[0, feature.column] = feature.bounds[1] + 1
    frame.loc[9, feature.column] = feature.bounds[0] - 1
    issue = only_issue(validation_issues(frame, schema), feature.column)
    assert "outside the valid range" in issue.problem
    assert issue.rows == (1, 10)
    assert issue.count == 2


def test_infinite_value_is_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = column_of_type(schema, "numeric")
    frame.loc[2, column] = "inf"
    assert "not finite" in only_issue(validation_issues(frame, schema), column).problem


def test_fraction_in_integer_column_is_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = column_of_type(schema, "integer")
    frame.loc[1, column] = 2.5
    assert "whole number" in only_issue(validation_issues(frame, schema), column).problem


def test_unknown_category_is_reported_with_the_known_ones(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = _string_categorical_column(schema)
    frame.loc[6, column] = "Underwater Basket Weaving"
    issue = only_issue(validation_issues(frame, schema), column)
    assert "unknown category" in issue.problem
    assert "Underwater Basket Weaving" in issue.problem
    assert issue.rows == (7,)


def test_integer_category_accepts_its_text_form(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    feature = next(f for f in schema.features if f.type == "categorical" and isinstance(f.category_list[0], int))
    frame[feature.column] = frame[feature.column].map(lambda v: None if v is None else f"{float(v)}")
    table = validate(dataset_from_frame(frame), schema)
    assert set(table.features[feature.name].dropna()) <= set(feature.category_list)


def test_non_binary_target_is_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    frame.loc[0, schema.target.column] = 7
    issue = only_issue(validation_issues(frame, schema), schema.target.column)
    assert "not binary" in issue.problem


def test_missing_target_value_is_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    frame.loc[8, schema.target.column] = None
    issue = only_issue(validation_issues(frame, schema), schema.target.column)
    assert "target value missing" in issue.problem
    assert issue.rows == (9,)


def test_single_class_is_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    frame[schema.target.column] = schema.target.completed_value
    issue = only_issue(validation_issues(frame, schema), schema.target.column)
    assert "at least 2 rows of each class" in issue.problem


def test_completed_value_matching_no_row_says_so_and_lists_the_values_found(
    frame: pd.DataFrame, schema: FeatureSchema
) -> None:
    # Coded 2/3 instead of 0/1: numbers, both classes present, and none is the completed value.
    frame[schema.target.column] = pd.to_numeric(frame[schema.target.column]) + 2
    issue = only_issue(validation_issues(frame, schema), schema.target.column)
    assert issue.problem == (
        f"needs at least 2 rows of each class, found 0 completed and {len(frame)} not completed: "
        "completed_value 1 matches no row; values found: 2, 3"
    )


def test_empty_table_is_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    issues = validation_issues(frame.head(0), schema)
    assert any(issue.column == "(table)" and "no data rows" in issue.problem for issue in issues)


def test_too_few_rows_are_reported(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    issue = only_issue(validation_issues(frame.head(30), schema, min_rows=50), "(table)")
    assert "at least 50" in issue.problem


def test_min_rows_counts_rows_after_duplicates_are_dropped(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    doubled = pd.concat([frame.head(30), frame.head(30)], ignore_index=True)
    issue = only_issue(validation_issues(doubled, schema, min_rows=50), "(table)")
    assert "only 30 rows after dropping 30 duplicates" in issue.problem


def test_exact_duplicates_are_dropped_and_counted(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    repeated = pd.concat([frame, frame.head(15), frame.head(5)], ignore_index=True)
    table = validate(dataset_from_frame(repeated), schema)
    assert table.rows_read == len(repeated)
    assert table.duplicates_dropped == 20
    assert table.rows == len(frame)
    assert len(table.target) == table.rows


def test_rows_differing_only_in_id_are_not_duplicates(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    id_column = schema.id_columns[0]
    copy = frame.head(10).copy()
    copy[id_column] = copy[id_column].map(lambda v: int(v) + 100_000)
    table = validate(dataset_from_frame(pd.concat([frame, copy], ignore_index=True)), schema)
    assert table.duplicates_dropped == 0


def test_all_problems_are_collected_at_once(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    numeric = column_of_type(schema, "numeric")
    categorical = _string_categorical_column(schema)
    missing = column_of_type(schema, "integer")
    frame.loc[4, numeric] = "abc"
    frame.loc[11, categorical] = "Cooking"
    frame.loc[12, schema.target.column] = 5
    issues = validation_issues(frame.drop(columns=[missing]), schema)
    columns = {issue.column for issue in issues}
    assert {numeric, categorical, missing, schema.target.column} <= columns
    assert only_issue(issues, numeric).rows == (5,)
    assert only_issue(issues, categorical).rows == (12,)


def test_report_lists_column_problem_count_and_rows(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = column_of_type(schema, "numeric")
    frame.loc[list(range(10)), column] = "bad"
    with pytest.raises(DataValidationError) as caught:
        validate(dataset_from_frame(frame), schema)
    report = caught.value.report()
    assert report.splitlines()[0].startswith("data validation failed with 1 problem")
    assert f"{column}: not a number x10" in report
    assert "rows 1, 2, 3, 4, 5, ..." in report
    assert len(caught.value.issues[0].rows) == MAX_ROWS_REPORTED


def test_unknown_extra_columns_are_ignored(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    frame["Notes"] = "anything"
    table = validate(dataset_from_frame(frame), schema)
    assert "Notes" not in table.features.columns


def test_validated_table_keeps_provenance(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    dataset = dataset_from_frame(frame, origin="somewhere.csv")
    table = validate(dataset, schema)
    assert table.fingerprint == dataset.fingerprint
    assert table.source == dataset.source
    assert table.schema == schema


def test_duplicates_with_missing_ids_are_dropped(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    # Missing ids compare equal in drop_duplicates: an id column with two missing cells does
    # not prove the rows distinct, so identical rows are still found.
    id_column = schema.id_columns[0]
    repeated = pd.concat([frame, frame.head(3)], ignore_index=True)
    repeated.loc[[0, len(frame)], id_column] = None
    table = validate(dataset_from_frame(repeated), schema)
    assert table.duplicates_dropped == 3
    assert table.rows == len(frame)


def test_repeated_ids_on_different_rows_are_kept(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    id_column = schema.id_columns[0]
    frame[id_column] = 7  # ids prove nothing now: the other columns decide
    table = validate(dataset_from_frame(frame), schema)
    assert table.duplicates_dropped == int(frame.duplicated().sum()) == 0
    assert table.rows == len(frame)


@pytest.mark.parametrize("ids", ["unique", "repeated", "missing", "absent"])
def test_duplicates_are_those_of_drop_duplicates(frame: pd.DataFrame, schema: FeatureSchema, ids: str) -> None:
    id_column = schema.id_columns[0]
    repeated = pd.concat([frame, frame.sample(40, random_state=0)], ignore_index=True)
    if ids == "unique":
        repeated[id_column] = range(len(repeated))
    elif ids == "repeated":
        repeated[id_column] = 1
    elif ids == "missing":
        repeated[id_column] = None
    else:
        repeated = repeated.drop(columns=[id_column])
    expected = dataset_from_frame(repeated).frame.drop_duplicates()
    table = validate(dataset_from_frame(repeated), schema)
    assert table.duplicates_dropped == len(repeated) - len(expected)
    assert table.rows == len(expected)


def test_missing_target_values_count_as_neither_class(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    frame[schema.target.column] = None
    frame.loc[0, schema.target.column] = schema.target.completed_value
    issues = [i for i in validation_issues(frame, schema) if "each class" in i.problem]
    assert len(issues) == 1
    assert "found 1 completed and 0 not completed" in issues[0].problem
