"""What every ``Predictor`` backend guarantees, for each predictor the registry knows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ccml.core.contracts import Predictor
from ccml.core.errors import PredictionError
from ccml.core.registry import PREDICTORS
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult
from ccml.storage.local import LocalModelStore


@pytest.fixture(params=PREDICTORS.names())
def predictor_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def predictor(predictor_name: str, training: TrainingResult) -> Predictor:
    return PREDICTORS.get(predictor_name)(Settings(predictor=predictor_name), training.artifact)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def test_probabilities_are_one_per_record_and_in_unit_interval(predictor: Predictor, training: TrainingResult) -> None:
    probabilities = predictor.predict_proba(training.holdout_features)
    assert probabilities.shape == (len(training.holdout_features),)
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_records_and_frames_agree(predictor: Predictor, training: TrainingResult) -> None:
    frame = training.holdout_features.head(30)
    np.testing.assert_allclose(predictor.predict_proba(frame), predictor.predict_proba(_records(frame)))


def test_predictions_match_the_reference_pipeline(predictor: Predictor, training: TrainingResult) -> None:
    pipeline = training.artifact.pipeline
    expected = pipeline.predict_proba(training.holdout_features)[:, list(pipeline.classes_).index(1)]
    np.testing.assert_allclose(predictor.predict_proba(training.holdout_features), expected, atol=1e-6)


def test_labels_follow_the_threshold_and_the_schema(
    predictor: Predictor, training: TrainingResult, schema: FeatureSchema
) -> None:
    for prediction in predictor.predict(training.holdout_features):
        assert prediction.completed == (prediction.probability >= predictor.threshold)
        assert prediction.label == schema.target.labels[int(prediction.completed)]


def test_unseen_category_and_missing_values_still_predict(predictor: Predictor, schema: FeatureSchema) -> None:
    record: dict[str, Any] = dict(schema.example_record())
    categorical = next(f for f in schema.features if f.type == "categorical")
    numeric = next(f for f in schema.features if f.type != "categorical")
    record[categorical.name] = "not-a-known-category"
    record[numeric.name] = None
    probability = predictor.predict_proba([record])
    assert probability.shape == (1,)
    assert 0 <= probability[0] <= 1


def test_empty_input_gives_no_predictions(predictor: Predictor) -> None:
    assert predictor.predict([]) == []


def test_version_is_the_stored_version_after_a_load(
    predictor_name: str, training: TrainingResult, store: LocalModelStore
) -> None:
    saved = store.save(training.artifact)
    predictor = PREDICTORS.get(predictor_name)(Settings(predictor=predictor_name), store.load(saved.id))
    assert predictor.version == saved.id


def test_bad_input_raises_prediction_error(predictor: Predictor, schema: FeatureSchema) -> None:
    record = {**schema.example_record(), next(f.name for f in schema.features if f.type == "numeric"): "text"}
    with pytest.raises(PredictionError):
        predictor.predict_proba([record])
