from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ccml.core.artifact import ModelArtifact
from ccml.core.errors import PredictionError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.serving.sklearn import SklearnPredictor, build_sklearn_predictor


@pytest.fixture(scope="module")
def predictor(training: TrainingResult) -> SklearnPredictor:
    return SklearnPredictor(training.artifact)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def test_probabilities_are_in_unit_interval(predictor: SklearnPredictor, table: ValidatedTable) -> None:
    probabilities = predictor.predict_proba(table.features)
    assert probabilities.shape == (table.rows,)
    assert probabilities.dtype == np.float64
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_probability_is_that_of_the_completed_class(predictor: SklearnPredictor, training: TrainingResult) -> None:
    pipeline = training.artifact.pipeline
    completed_column = list(pipeline.classes_).index(1)
    expected = pipeline.predict_proba(training.holdout_features)[:, completed_column]
    np.testing.assert_array_equal(predictor.predict_proba(training.holdout_features), expected)


def test_records_and_frames_give_the_same_probabilities(predictor: SklearnPredictor, table: ValidatedTable) -> None:
    frame = table.features.head(40)
    np.testing.assert_array_equal(predictor.predict_proba(frame), predictor.predict_proba(_records(frame)))


def test_labels_come_from_the_schema(predictor: SklearnPredictor, schema: FeatureSchema, table: ValidatedTable) -> None:
    predictions = predictor.predict(table.features.head(100))
    assert {p.label for p in predictions} <= set(schema.target.labels)
    for prediction in predictions:
        assert prediction.completed == (prediction.probability >= predictor.threshold)
        assert prediction.label == schema.target.labels[int(prediction.completed)]


def test_threshold_decides_the_label(training: TrainingResult, table: ValidatedTable) -> None:
    strict = SklearnPredictor(training.artifact, threshold=0.99)
    lenient = SklearnPredictor(training.artifact, threshold=0.01)
    rows = table.features.head(100)
    assert sum(p.completed for p in strict.predict(rows)) <= sum(p.completed for p in lenient.predict(rows))


def test_custom_target_labels_are_used(training: TrainingResult, table: ValidatedTable) -> None:
    manifest = training.artifact.manifest
    schema = {**manifest.schema_, "target": {**manifest.schema_["target"], "labels": ["Dropped", "Finished"]}}
    artifact = ModelArtifact(manifest.model_copy(update={"schema_": schema}), training.artifact.files)
    labels = {p.label for p in SklearnPredictor(artifact, threshold=0.5).predict(table.features.head(200))}
    assert labels <= {"Dropped", "Finished"}
    assert labels


def test_empty_input_gives_empty_output(predictor: SklearnPredictor, table: ValidatedTable) -> None:
    assert predictor.predict_proba([]).shape == (0,)
    assert predictor.predict(table.features.head(0)) == []


def test_unsaved_artifact_reports_its_version_as_unsaved(predictor: SklearnPredictor) -> None:
    assert predictor.version == "unsaved"


def test_model_failure_is_wrapped_in_prediction_error(predictor: SklearnPredictor, schema: FeatureSchema) -> None:
    record = {**schema.example_record(), schema.features[1].name: "not a number"}
    with pytest.raises(PredictionError, match="failed to predict"):
        predictor.predict_proba([record])


def test_settings_threshold_reaches_the_predictor(training: TrainingResult) -> None:
    predictor = build_sklearn_predictor(Settings(decision_threshold=0.3), training.artifact)
    assert predictor.threshold == 0.3
