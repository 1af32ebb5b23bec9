"""The ONNX backend: parity with scikit-learn, refusal and fallback, and a serving path
that never imports scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccml.core.errors import PredictionError
from ccml.core.model_files import ONNX_FILE
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.serving import onnx as onnx_backend
from ccml.models.serving.onnx import OnnxPredictor, build_onnx_predictor
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.models.training import export
from ccml.models.training.export import PARITY_TOLERANCE
from ccml.models.training.trainers import HistGradientBoostingTrainer, LogisticRegressionTrainer, RandomForestTrainer
from ccml.models.training.validation import validate
from ccml.storage.local import LocalModelStore
from tests.helpers import dataset_from_frame, fit

ENGAGEMENT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "course-engagement"
TRAINERS = [RandomForestTrainer, HistGradientBoostingTrainer, LogisticRegressionTrainer]


def _assert_parity(result: TrainingResult, features: pd.DataFrame) -> None:
    assert ONNX_FILE in result.artifact.files, result.artifact.manifest.notes
    onnx = OnnxPredictor(result.artifact).predict_proba(features)
    reference = SklearnPredictor(result.artifact).predict_proba(features)
    assert np.max(np.abs(onnx - reference)) <= PARITY_TOLERANCE
    np.testing.assert_array_equal(onnx >= 0.5, reference >= 0.5)


@pytest.mark.parametrize("trainer", TRAINERS, ids=lambda t: t.name)
def test_onnx_matches_sklearn_on_synthetic_data(trainer: type[RandomForestTrainer], table: ValidatedTable) -> None:
    result = fit(trainer({"n_estimators": 20} if trainer is RandomForestTrainer else None), table)
    _assert_parity(result, table.features)
    assert result.artifact.manifest.notes["onnx"].startswith("converted")


@pytest.mark.skipif(not ENGAGEMENT.is_dir(), reason=f"shared engagement data absent at {ENGAGEMENT}")
@pytest.mark.parametrize("trainer", TRAINERS, ids=lambda t: t.name)
def test_onnx_matches_sklearn_on_the_engagement_data(trainer: type[RandomForestTrainer], schema: FeatureSchema) -> None:
    frame = pd.read_csv(ENGAGEMENT / "online_course_engagement_data.csv", dtype=str)
    table = validate(dataset_from_frame(frame), schema)
    result = fit(trainer(), table)  # ccml's defaults: the model that would really be served
    _assert_parity(result, table.features)


def test_failed_conversion_still_trains_and_the_manifest_says_why(
    monkeypatch: pytest.MonkeyPatch, table: ValidatedTable
) -> None:
    def broken_session(graph: bytes, threads: int) -> object:
        raise RuntimeError("no kernel for this operator")

    monkeypatch.setattr(export, "ort_session", broken_session)
    result = fit(RandomForestTrainer({"n_estimators": 5}), table)
    assert ONNX_FILE not in result.artifact.files
    assert "no kernel for this operator" in result.artifact.manifest.notes["onnx"]
    monkeypatch.undo()
    with pytest.raises(PredictionError, match="cannot be served by the onnx backend: not converted"):
        OnnxPredictor(result.artifact)


def test_parity_failure_is_not_shipped(monkeypatch: pytest.MonkeyPatch, table: ValidatedTable) -> None:
    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)
    result = fit(RandomForestTrainer({"n_estimators": 5}), table)
    assert ONNX_FILE not in result.artifact.files
    assert "parity failed" in result.artifact.manifest.notes["onnx"]


def test_fallback_serves_a_version_without_onnx_with_sklearn_only_when_configured(
    monkeypatch: pytest.MonkeyPatch, table: ValidatedTable
) -> None:
    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)
    artifact = fit(RandomForestTrainer({"n_estimators": 5}), table).artifact
    with pytest.raises(PredictionError):
        build_onnx_predictor(Settings(), artifact)
    assert isinstance(build_onnx_predictor(Settings(onnx_fallback=True), artifact), SklearnPredictor)


def test_probabilities_stay_within_zero_and_one(training: TrainingResult, table: ValidatedTable) -> None:
    probabilities = OnnxPredictor(training.artifact).predict_proba(table.features)
    assert probabilities.min() >= 0.0
    assert probabilities.max() <= 1.0


def test_large_batches_match_small_ones(training: TrainingResult, table: ValidatedTable) -> None:
    predictor = OnnxPredictor(training.artifact)
    big = pd.concat([table.features] * (onnx_backend.LARGE_BATCH // len(table.features) + 1), ignore_index=True)
    records = table.features.head(50).to_dict(orient="records")
    np.testing.assert_allclose(predictor.predict_proba(big)[:50], predictor.predict_proba(records), atol=1e-7)


def test_serving_an_onnx_model_imports_neither_sklearn_nor_pandas(tmp_path: Path, training: TrainingResult) -> None:
    store = LocalModelStore(tmp_path / "models")
    store.promote(store.save(training.artifact).id)
    code = f"""
import json, sys
from fastapi.testclient import TestClient
from ccml.api.app import create_app
from ccml.core.settings import Settings
settings = Settings(home={str(tmp_path)!r}, predictor="onnx", log_level="error")
with TestClient(create_app(settings)) as client:
    answer = client.post("/predict", json=settings.feature_schema().example_record())
loaded = {{name: name in sys.modules for name in ("sklearn", "pandas")}}
print(json.dumps({{"status": answer.status_code, **loaded}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"status": 200, "sklearn": False, "pandas": False}
