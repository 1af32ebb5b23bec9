from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyClassifier

from ccml.core.errors import InvalidInputError
from ccml.core.schema import FeatureSchema
from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.training.evaluation import holdout_split
from ccml.models.training.features import SchemaEncoder, build_feature_pipeline


def _expected_width(schema: FeatureSchema) -> int:
    return sum(len(f.category_list) if f.type == "categorical" else 1 for f in schema.features)


def _features_step(training: TrainingResult) -> Any:
    """The fitted pipeline up to and including the ``features`` step (no classifier)."""
    return training.artifact.pipeline[:-1]


def _one_hot_block(schema: FeatureSchema, name: str) -> slice:
    """Columns of ``name``'s one-hot block in the ``features`` output (numerics come first)."""
    start = sum(1 for f in schema.features if f.is_numeric)
    for feature in schema.features:
        if feature.is_numeric:
            continue
        width = len(feature.category_list)
        if feature.name == name:
            return slice(start, start + width)
        start += width
    raise KeyError(name)


# sklearn's parametrize_with_checks feeds anonymous numeric arrays, which SchemaEncoder
# rejects by design (it reads named columns or records), so its conventions are checked here.
def test_schema_encoder_init_only_stores_its_argument_and_clones(schema: FeatureSchema) -> None:
    schema_dict = schema.model_dump(mode="json")
    encoder = SchemaEncoder(schema_dict)
    assert encoder.get_params() == {"schema": schema_dict}
    assert not [name for name in vars(encoder) if name.endswith("_")]
    twin = clone(encoder)
    assert twin is not encoder
    assert twin.get_params() == encoder.get_params()


def test_schema_encoder_fit_returns_self_with_fitted_state(schema: FeatureSchema, table: ValidatedTable) -> None:
    encoder = SchemaEncoder(schema.model_dump(mode="json"))
    assert encoder.fit(table.features, table.target) is encoder
    assert encoder.n_features_out_ == len(schema.features)


def test_schema_encoder_survives_pickling(schema: FeatureSchema, table: ValidatedTable) -> None:
    encoder = SchemaEncoder(schema.model_dump(mode="json")).fit()
    restored = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_array_equal(restored.transform(table.features), encoder.transform(table.features))


def test_output_width_is_fixed_by_the_schema(training: TrainingResult, table: ValidatedTable) -> None:
    out = _features_step(training).transform(table.features)
    assert out.shape == (table.rows, _expected_width(table.schema))


def test_output_width_is_the_same_when_training_data_lacks_a_category(
    schema: FeatureSchema, table: ValidatedTable
) -> None:
    feature = next(f for f in schema.features if f.type == "categorical")
    keep = (table.features[feature.name] != feature.category_list[0]).to_numpy()
    pipeline = build_feature_pipeline(schema, DummyClassifier())
    pipeline.fit(table.features[keep], table.target[keep])
    out = pipeline[:-1].transform(table.features.head(20))
    assert out.shape[1] == _expected_width(schema)


def test_unseen_category_encodes_as_all_zeros(training: TrainingResult, schema: FeatureSchema) -> None:
    record = dict(schema.example_record())
    feature = next(f for f in schema.features if f.type == "categorical")
    record[feature.name] = "never-seen-before"
    out = _features_step(training).transform(pd.DataFrame([record]))
    block = out[0, _one_hot_block(schema, feature.name)]
    assert np.all(block == 0)


def test_known_category_encodes_as_exactly_one_one(training: TrainingResult, schema: FeatureSchema) -> None:
    feature = next(f for f in schema.features if f.type == "categorical")
    for position, category in enumerate(feature.category_list):
        record = {**schema.example_record(), feature.name: category}
        block = _features_step(training).transform(pd.DataFrame([record]))[0, _one_hot_block(schema, feature.name)]
        assert block.sum() == 1
        assert block[position] == 1


def test_missing_values_are_imputed(training: TrainingResult, schema: FeatureSchema) -> None:
    record: dict[str, Any] = dict.fromkeys(schema.feature_names)
    for frame_or_records in (pd.DataFrame([record]), [record], [{}]):
        out = _features_step(training).transform(frame_or_records)
        assert not np.isnan(out).any()
        assert out.shape == (1, _expected_width(schema))


def test_numeric_missing_value_is_imputed_with_the_training_median(
    training: TrainingResult, schema: FeatureSchema, table: ValidatedTable
) -> None:
    position = next(i for i, f in enumerate(schema.features) if f.type == "numeric")
    feature = schema.features[position]
    record = {**schema.example_record(), feature.name: None}
    pipeline = training.artifact.pipeline
    out = pipeline[:-1].transform(pd.DataFrame([record]))
    spec = training.artifact.manifest.holdout
    train, _, _ = holdout_split(table.rows, table.target, spec.fraction, spec.random_state)
    median = float(np.nanmedian(table.features[feature.name].iloc[train]))
    numeric_position = [i for i, f in enumerate(schema.features) if f.is_numeric].index(position)
    assert out[0, numeric_position] == pytest.approx(median)


def test_records_and_frames_encode_identically(training: TrainingResult, table: ValidatedTable) -> None:
    encoder = training.artifact.pipeline.named_steps["encode"]
    frame = table.features.head(50)
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
    np.testing.assert_array_equal(encoder.transform(frame), encoder.transform(records))


def test_frame_without_a_feature_column_raises_invalid_input(training: TrainingResult, table: ValidatedTable) -> None:
    encoder = training.artifact.pipeline.named_steps["encode"]
    with pytest.raises(InvalidInputError, match=table.schema.feature_names[0]):
        encoder.transform(table.features.drop(columns=[table.schema.feature_names[0]]).head(3))


def test_encoder_names_its_outputs_after_the_schema(schema: FeatureSchema) -> None:
    encoder = SchemaEncoder(schema.model_dump(mode="json")).fit()
    assert list(encoder.get_feature_names_out()) == schema.feature_names


def test_scaled_pipeline_standardises_numeric_features(schema: FeatureSchema, table: ValidatedTable) -> None:
    pipeline = build_feature_pipeline(schema, DummyClassifier(), scale_numeric=True)
    pipeline.fit(table.features, table.target)
    out = pipeline[:-1].transform(table.features)
    numeric = sum(1 for f in schema.features if f.is_numeric)
    np.testing.assert_allclose(out[:, :numeric].mean(axis=0), 0, atol=1e-9)
