from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ccml.core.errors import SchemaError
from ccml.core.schema import FeatureSchema, load_schema
from ccml.models.training.synthetic import generate
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.validation import validate
from tests.helpers import FAST_PARAMS, dataset_from_frame, fit

EXAMPLE_SCHEMA = Path(__file__).resolve().parents[2] / "examples" / "schemas" / "kddcup2015.toml"
ROWS = 2000


@pytest.fixture(scope="module")
def frame(schema: FeatureSchema) -> pd.DataFrame:
    return generate(schema, ROWS, seed=3)


def test_columns_are_the_schema_columns_with_ids(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    groups = [g.column for g in schema.groups]
    assert groups, "the built-in schema declares group columns"
    expected = [*schema.id_columns, *(f.column for f in schema.features), *groups, schema.target.column]
    assert list(frame.columns) == expected
    assert len(frame) == ROWS
    assert frame[schema.id_columns[0]].is_unique


def test_about_the_configured_share_completes(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    share = (frame[schema.target.column] == schema.target.completed_value).mean()
    assert share == pytest.approx(schema.synthetic.positive_rate, abs=0.04)


def test_a_few_values_are_missing_in_feature_columns_only(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    feature_columns = [f.column for f in schema.features]
    missing = frame[feature_columns].isna().to_numpy().mean()
    assert 0 < missing < 3 * schema.synthetic.missing_rate
    assert not frame[schema.target.column].isna().any()


def test_generated_data_passes_validation(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    table = validate(dataset_from_frame(frame), schema)
    assert table.rows == ROWS


def test_same_seed_gives_the_same_frame(schema: FeatureSchema) -> None:
    pd.testing.assert_frame_equal(generate(schema, 300, seed=5), generate(schema, 300, seed=5))


def test_different_seeds_give_different_frames(schema: FeatureSchema) -> None:
    assert not generate(schema, 300, seed=5).equals(generate(schema, 300, seed=6))


def test_model_reaches_a_meaningful_but_imperfect_roc_auc(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    table = validate(dataset_from_frame(frame), schema)
    auc = fit(RandomForestTrainer(FAST_PARAMS["random_forest"]), table).artifact.manifest.evaluation.holdout.roc_auc
    assert 0.80 <= auc <= 0.95


def test_engagement_drives_the_numeric_features(frame: pd.DataFrame, schema: FeatureSchema) -> None:
    completed = frame[schema.target.column] == schema.target.completed_value
    for feature in schema.features:
        if feature.type == "categorical" or feature.synthetic.weight <= 0:
            continue
        values = pd.to_numeric(frame[feature.column])
        assert values[completed].mean() > values[~completed].mean(), feature.name


def test_example_schema_generates_valid_data_too() -> None:
    schema = load_schema(EXAMPLE_SCHEMA)
    frame = generate(schema, 400, seed=1)
    assert validate(dataset_from_frame(frame), schema).rows > 0
    share = (frame[schema.target.column] == schema.target.completed_value).mean()
    assert share == pytest.approx(schema.synthetic.positive_rate, abs=0.06)


def test_zero_rows_are_refused(schema: FeatureSchema) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate(schema, 0)


def test_non_binary_target_cannot_be_generated(schema: FeatureSchema) -> None:
    odd = schema.model_copy(update={"target": schema.target.model_copy(update={"completed_value": "yes"})})
    with pytest.raises(SchemaError, match="0/1 target"):
        generate(odd, 10)
