from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from ccml.core.errors import InvalidInputError
from ccml.core.schema import FeatureSchema
from ccml.models.serving.records import record_model, records_from_frame, validate_records


def _numeric_name(schema: FeatureSchema) -> str:
    return next(f.name for f in schema.features if f.type == "numeric")


def test_example_record_is_valid(schema: FeatureSchema) -> None:
    assert validate_records([dict(schema.example_record())], schema) == [dict(schema.example_record())]


def test_record_model_is_cached_per_schema(schema: FeatureSchema) -> None:
    assert record_model(schema) is record_model(schema.model_copy(deep=True))


@pytest.mark.parametrize(
    "change",
    [
        {"extra_field": 1},
        {"__numeric__": "12"},
        {"__numeric__": math.nan},
        {"__numeric__": math.inf},
        {"__numeric__": -1e9},
        {"__numeric__": True},
        {"__numeric__": None},
    ],
    ids=["unknown field", "string number", "nan", "inf", "out of range", "boolean", "null"],
)
def test_invalid_field_is_rejected_naming_record_and_field(schema: FeatureSchema, change: dict[str, Any]) -> None:
    name = _numeric_name(schema)
    record = dict(schema.example_record())
    for key, value in change.items():
        record[name if key == "__numeric__" else key] = value
    with pytest.raises(InvalidInputError) as caught:
        validate_records([record], schema)
    field = name if "__numeric__" in change else "extra_field"
    assert f"record 1: {field}" in str(caught.value)


def test_unknown_category_and_boolean_category_are_rejected(schema: FeatureSchema) -> None:
    categorical = [f for f in schema.features if f.type == "categorical"]
    records = []
    for feature in categorical:
        records.append({**schema.example_record(), feature.name: "no such category"})
        records.append({**schema.example_record(), feature.name: True})
    with pytest.raises(InvalidInputError) as caught:
        validate_records(records, schema)
    for feature in categorical:
        assert feature.name in str(caught.value)


def test_missing_field_is_rejected(schema: FeatureSchema) -> None:
    record = dict(schema.example_record())
    removed = schema.feature_names[-1]
    del record[removed]
    with pytest.raises(InvalidInputError, match=f"record 1: {removed}: Field required"):
        validate_records([record], schema)


def test_non_object_items_are_rejected(schema: FeatureSchema) -> None:
    with pytest.raises(InvalidInputError, match="record 2: expected an object, got list"):
        validate_records([dict(schema.example_record()), [1, 2]], schema)


def test_problem_list_is_capped(schema: FeatureSchema) -> None:
    with pytest.raises(InvalidInputError, match=r"\.\.\. and \d+ more"):
        validate_records([{}] * 5, schema)


def test_records_from_csv_columns_become_typed_feature_records(
    schema: FeatureSchema, sample_frame: pd.DataFrame
) -> None:
    complete = sample_frame.dropna().head(20)
    records = records_from_frame(complete, schema)
    assert [list(r) for r in records] == [schema.feature_names] * len(complete)
    assert validate_records(records, schema) == records


def test_missing_csv_cells_become_none(schema: FeatureSchema, sample_frame: pd.DataFrame) -> None:
    # Feature cells only: a blank group cell (gender, ...) is not part of a record.
    features = [f.column for f in schema.features]
    holes = sample_frame[sample_frame[features].isna().any(axis=1)].head(5)
    records = records_from_frame(holes, schema)
    assert all(any(value is None for value in record.values()) for record in records)
