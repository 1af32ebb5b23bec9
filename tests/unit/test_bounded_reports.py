"""Validation reports stay readable whatever the data: cell values cut, problems capped."""

from __future__ import annotations

import pandas as pd
import pytest

from ccml.core.errors import DataValidationError, ValidationIssue
from ccml.core.schema import FeatureSchema
from ccml.models.training.validation import MAX_ISSUES_REPORTED, MAX_VALUE_CHARS, validate
from tests.helpers import dataset_from_frame

REPORT_LIMIT = 4096
HUGE = 50 * 1024 * 1024


@pytest.fixture
def frame(sample_frame: pd.DataFrame) -> pd.DataFrame:
    return sample_frame.head(200).astype(object).copy()


def _only(issues: list[ValidationIssue], column: str) -> ValidationIssue:
    matching = [issue for issue in issues if issue.column == column]
    assert len(matching) == 1, issues
    return matching[0]


def _string_categorical_column(schema: FeatureSchema) -> str:
    return next(f.column for f in schema.features if f.type == "categorical" and isinstance(f.category_list[0], str))


def test_huge_unknown_category_is_cut_in_the_report(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    column = _string_categorical_column(schema)
    frame.loc[2, column] = "y" * HUGE
    with pytest.raises(DataValidationError) as caught:
        validate(dataset_from_frame(frame), schema)
    report = str(caught.value)
    assert len(report) < REPORT_LIMIT
    assert f"{column}: unknown category ('{'y' * MAX_VALUE_CHARS}… ({HUGE:,} characters)')" in report


def test_huge_target_values_are_cut_in_the_report(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    data = schema.model_dump(mode="json")
    data["target"]["completed_value"] = "yes"
    textual = FeatureSchema.from_dict(data)
    column = schema.target.column
    frame[column] = frame[column].map({0: "no", 1: "yes"})
    for row in range(6):
        frame.loc[row, column] = str(row) * 1_000_000
    with pytest.raises(DataValidationError) as caught:
        validate(dataset_from_frame(frame), textual)
    issue = _only(caught.value.issues, column)
    assert "not binary: 8 distinct values" in issue.problem
    assert "(1,000,000 characters)" in issue.problem
    assert len(str(caught.value)) < REPORT_LIMIT


def test_report_of_a_wide_schema_is_bounded(schema: FeatureSchema) -> None:
    data = schema.model_dump(mode="json")
    template = data["features"][1]
    data["features"] += [{**template, "name": f"extra_{i}", "column": f"Extra{i}"} for i in range(100)]
    wide = FeatureSchema.from_dict(data)
    with pytest.raises(DataValidationError) as caught:
        validate(dataset_from_frame(pd.DataFrame({"Other": [1, 2]})), wide)
    issues = caught.value.issues
    assert len(issues) == MAX_ISSUES_REPORTED
    summary = issues[-1]
    assert summary.column == "(report)"
    # Every required column is missing, and two rows are too few.
    assert summary.problem.startswith(f"{len(wide.columns) + 1} problems in all")
    assert summary.count == len(wide.columns) + 1 - (MAX_ISSUES_REPORTED - 1)
    assert len(str(caught.value)) < REPORT_LIMIT
