"""A trainer that is not scikit-learn: registered as a plugin, it trains through the workflow, is
gated, promoted and served by the ONNX backend (with its own graph); and a version the configured
serving backend cannot serve is never promoted."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper

from ccml.api.app import create_app
from ccml.core.components import build_model_store
from ccml.core.contracts import FittedModel, Labels, Probabilities, Trainer
from ccml.core.model_files import ONNX_FILE, REPORT_FILE
from ccml.core.registry import TRAINERS
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.models.serving.encoding import RecordEncoder
from ccml.models.training import export
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.local import LocalDataSource
from tests.helpers import FAST_PARAMS


class LogisticModel(FittedModel):
    """Logistic regression on the schema-encoded rows, fitted by plain gradient descent."""

    def __init__(self, schema: FeatureSchema, fill: Any, weights: Any, bias: float, params: dict[str, Any]) -> None:
        self.encoder = RecordEncoder(schema)
        self.fill, self.weights, self.bias, self.params = fill, weights, bias, params

    def _logits(self, rows: Any) -> Any:
        filled = np.where(np.isnan(rows), self.fill, rows)
        return filled @ self.weights + self.bias

    def predict_proba(self, features: pd.DataFrame) -> Probabilities:
        logits = self._logits(self.encoder.encode(features).astype(np.float32).astype(np.float64))
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def files(self) -> dict[str, bytes]:
        return {}  # served from its ONNX graph only

    def onnx_graph(self) -> bytes:
        width = len(self.weights)
        inputs = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, width])
        output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])
        constants = [
            numpy_helper.from_array(np.asarray(self.fill, np.float32), "fill"),
            numpy_helper.from_array(np.asarray(self.weights, np.float32).reshape(width, 1), "weights"),
            numpy_helper.from_array(np.asarray([self.bias], np.float32), "bias"),
            numpy_helper.from_array(np.asarray([1.0], np.float32), "one"),
        ]
        nodes = [
            helper.make_node("IsNaN", ["input"], ["missing"]),
            helper.make_node("Where", ["missing", "fill", "input"], ["filled"]),
            helper.make_node("MatMul", ["filled", "weights"], ["product"]),
            helper.make_node("Add", ["product", "bias"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["completed"]),
            helper.make_node("Sub", ["one", "completed"], ["not_completed"]),
            helper.make_node("Concat", ["not_completed", "completed"], ["probabilities"], axis=1),
        ]
        graph = helper.make_graph(nodes, "logistic", [inputs], [output], constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return bytes(model.SerializeToString())


class GradientDescentTrainer(Trainer):
    """Standardises the encoded columns and descends the log-loss: no scikit-learn anywhere."""

    name: ClassVar[str] = "gradient_descent_test"

    def _fit(self, features: pd.DataFrame, target: Labels, schema: FeatureSchema) -> LogisticModel:
        rows = RecordEncoder(schema).encode(features)
        fill = np.nanmedian(rows, axis=0)
        filled = np.where(np.isnan(rows), fill, rows)
        mean, scale = filled.mean(axis=0), filled.std(axis=0) + 1e-9
        x = (filled - mean) / scale
        w, b = np.zeros(x.shape[1]), 0.0
        for _ in range(300):
            p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
            w -= 0.5 * x.T @ (p - target) / len(x)
            b -= 0.5 * float(np.mean(p - target))
        # Fold the standardisation into the weights: the served graph takes raw encoded rows.
        weights = w / scale
        return LogisticModel(schema, fill, weights, b - float(mean @ weights), {"steps": 300, "rate": 0.5})


@pytest.fixture
def plugin_trainer() -> Any:
    TRAINERS.register(GradientDescentTrainer.name, lambda settings: GradientDescentTrainer())
    yield GradientDescentTrainer.name
    TRAINERS._entries.pop(GradientDescentTrainer.name)


def test_a_trainer_that_is_not_scikit_learn_trains_is_gated_promoted_and_served(
    plugin_trainer: str, tmp_path: Path, sample_csv: Path, schema: FeatureSchema
) -> None:
    settings = Settings(home=tmp_path / "home", trainer=plugin_trainer, min_rows=50)
    store = build_model_store(settings)
    trainer = TRAINERS.get(settings.trainer)(settings)
    first = RetrainWorkflow.from_settings(settings, store, trainer).run(LocalDataSource(sample_csv))
    assert first.promoted, first.reason
    assert set(first.manifest.files) == {ONNX_FILE, REPORT_FILE}  # no pipeline file: the graph is the model
    assert first.manifest.trainer == plugin_trainer
    assert first.manifest.evaluation.holdout.roc_auc > 0.75
    # Gated: the second run scores the champion (through the ONNX backend) on its own holdout.
    second = RetrainWorkflow.from_settings(settings, store, trainer).run(LocalDataSource(sample_csv))
    assert second.manifest.promotion is not None
    assert second.manifest.promotion.champion_version == first.version
    assert second.manifest.promotion.champion_score == pytest.approx(second.manifest.promotion.challenger_score)

    with TestClient(create_app(settings)) as client:
        answer = client.post("/predict", json=schema.example_record())
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == store.resolve()


def test_a_version_whose_onnx_export_failed_is_not_promoted_when_onnx_serves(
    tmp_path: Path, sample_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", predictor="onnx", min_rows=50)
    store = build_model_store(settings)

    def broken_session(graph: bytes, threads: int) -> object:
        raise RuntimeError("no kernel for this operator")

    monkeypatch.setattr(export, "ort_session", broken_session)
    trainer = RandomForestTrainer(FAST_PARAMS["random_forest"])
    outcome = RetrainWorkflow.from_settings(settings, store, trainer).run(LocalDataSource(sample_csv), force=True)

    assert not outcome.promoted
    assert outcome.reason.startswith("not servable: the onnx backend cannot serve it")
    assert "no kernel for this operator" in outcome.manifest.notes["onnx"]
    assert store.alias() is None  # saved for inspection, never promoted, not even with --force
    assert [v.id for v in store.versions()] == [outcome.version]

    # With the sklearn backend configured, the same model is servable and promoted.
    served_by_sklearn = settings.model_copy(update={"predictor": "sklearn"})
    promoted = RetrainWorkflow.from_settings(served_by_sklearn, store, trainer).run(LocalDataSource(sample_csv))
    assert promoted.promoted, promoted.reason
