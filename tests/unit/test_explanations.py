"""Explanations are exact: for every built-in trainer, raw and calibrated (sigmoid, isotonic), the
bias plus every feature's contribution, through the link, is the probability each serving backend
predicts; factors name schema features only and point the way their contribution does. A model
ccml cannot read ships no explainer, and a damaged explainer file is refused, never run."""

from __future__ import annotations

import io
import zipfile
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from structlog.testing import capture_logs

from ccml.core.artifact import ModelArtifact
from ccml.core.contracts import FittedModel, Labels, Predictor, Probabilities, Trainer
from ccml.core.errors import ExplanationUnavailableError, PredictionError
from ccml.core.model_files import EXPLAINER_FILE, ONNX_FILE
from ccml.core.schema import FeatureSchema
from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.serving.explainer import Explainer, pack
from ccml.models.serving.explanations import (
    ExplainerSlot,
    explain_records,
    explanation,
    load_explainer,
    require_explainer,
)
from ccml.models.serving.onnx import OnnxPredictor
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.models.training import explainer_export
from ccml.models.training.export import CALIBRATED_PARITY_TOLERANCE
from ccml.models.training.features import build_feature_pipeline
from ccml.models.training.trainers import (
    HistGradientBoostingTrainer,
    LogisticRegressionTrainer,
    RandomForestTrainer,
    SklearnModel,
)
from tests.helpers import FAST_PARAMS, fit
from tests.strategies import records

# float32 trees and sums in ONNX Runtime differ from scikit-learn's float64 by about 1e-7.
TOLERANCE = {"sklearn": 1e-9, "onnx": 1e-6}
BASES: dict[str, tuple[Any, bool]] = {
    "random_forest": (RandomForestClassifier(n_estimators=10, random_state=0), False),
    "hist_gradient_boosting": (HistGradientBoostingClassifier(max_iter=20, random_state=0), False),
    "logistic_regression": (LogisticRegression(max_iter=1000), True),
}
RAW = {
    "random_forest": RandomForestTrainer(FAST_PARAMS["random_forest"]),
    "hist_gradient_boosting": HistGradientBoostingTrainer(FAST_PARAMS["hist_gradient_boosting"]),
    "logistic_regression": LogisticRegressionTrainer(),
}
CASES = [(trainer, method) for trainer in BASES for method in ("raw", "sigmoid", "isotonic")]


class _InMemoryModel(SklearnModel):
    # Calibrated pipelines are not on skops' trusted list here: the tests serve the pipeline in memory.
    def files(self) -> dict[str, bytes]:
        return {}


class CalibratedTrainer(Trainer):
    """The calibration option's pipeline: ``CalibratedClassifierCV(base, ensemble=False)`` as ``clf``."""

    name = "calibrated"

    def __init__(self, base: Any, method: str, scale: bool) -> None:
        self.base, self.method, self.scale = base, method, scale

    def _fit(self, features: pd.DataFrame, target: Labels, schema: FeatureSchema) -> FittedModel:
        estimator = CalibratedClassifierCV(clone(self.base), method=self.method, ensemble=False, cv=3)
        pipeline = build_feature_pipeline(schema, estimator, scale_numeric=self.scale)
        pipeline.fit(features, target)
        return _InMemoryModel(pipeline, {"method": self.method})


@pytest.fixture(scope="module")
def trained(table: ValidatedTable) -> dict[tuple[str, str], TrainingResult]:
    """Every case fitted once, exported as the workflow exports (ONNX and the explainer)."""
    results = {}
    for trainer, method in CASES:
        base, scale = BASES[trainer]
        model = RAW[trainer] if method == "raw" else CalibratedTrainer(base, method, scale)
        results[(trainer, method)] = fit(model, table)
    return results


def _predictor(result: TrainingResult, backend: str) -> Predictor:
    return OnnxPredictor(result.artifact) if backend == "onnx" else SklearnPredictor(result.artifact)


@pytest.mark.parametrize("backend", ["sklearn", "onnx"])
@pytest.mark.parametrize(("trainer", "method"), CASES, ids=[f"{t}-{m}" for t, m in CASES])
def test_bias_plus_contributions_is_the_predicted_probability(
    trained: dict[tuple[str, str], TrainingResult], schema: FeatureSchema, trainer: str, method: str, backend: str
) -> None:
    result = trained[(trainer, method)]
    assert EXPLAINER_FILE in result.artifact.files, result.artifact.manifest.notes
    explainer = require_explainer(result.artifact)
    if backend == "onnx" and ONNX_FILE not in result.artifact.files:
        # A version whose graph failed the export's parity check has none to compare with.
        pytest.skip(f"no ONNX graph to compare with: {result.artifact.manifest.notes['onnx']}")
    predictor = _predictor(result, backend)
    # The served graph's float32 score through a steep isotonic segment is held to the export's
    # own parity bound; the explainer itself is exact (the sklearn backend, to 1e-9).
    tolerance = CALIBRATED_PARITY_TOLERANCE if (backend, method) == ("onnx", "isotonic") else TOLERANCE[backend]
    expected_link = {"raw": {"random_forest": "identity"}.get(trainer, "logistic")}.get(method, f"{method}_calibration")
    assert explainer.link.kind == expected_link
    assert explainer.scale == ("probability" if trainer == "random_forest" else "log-odds")

    # 1 to 8 records take the one-record path, more the NumPy one: both are checked.
    @given(st.lists(records(schema, missing=True, unseen=True), min_size=1, max_size=12))
    def check(batch: list[dict[str, Any]]) -> None:
        contributions = explainer.explain(explainer.encoder.encode(batch))
        probabilities = explainer.link.probabilities(explainer.bias + contributions.sum(axis=1))
        np.testing.assert_allclose(probabilities, predictor.predict_proba(batch), rtol=0, atol=tolerance)
        one = explainer.explain_one(explainer.encoder.row(batch[0]))
        np.testing.assert_allclose(one, contributions[0], rtol=0, atol=1e-12)
        assert explainer.link.probability(explainer.bias + sum(one)) == pytest.approx(
            predictor.predict_one(batch[0]), abs=tolerance
        )

    check()


@pytest.mark.parametrize(("trainer", "method"), [("hist_gradient_boosting", "raw"), ("logistic_regression", "sigmoid")])
def test_factors_name_schema_features_and_point_the_way_they_contribute(
    trained: dict[tuple[str, str], TrainingResult], schema: FeatureSchema, trainer: str, method: str
) -> None:
    explainer = require_explainer(trained[(trainer, method)].artifact)
    everything = len(schema.features)

    @given(st.lists(records(schema, missing=True, unseen=True), min_size=1, max_size=10), st.integers(1, everything))
    def check(batch: list[dict[str, Any]], top: int) -> None:
        for record, explained in zip(batch, explain_records(explainer, batch, top), strict=True):
            factors = explained["factors"]
            assert len(factors) <= top
            assert {f["feature"] for f in factors} <= set(schema.feature_names)
            sizes = [abs(f["contribution"]) for f in factors]
            assert sizes == sorted(sizes, reverse=True)
            for factor in factors:
                assert factor["value"] == record[factor["feature"]]
                raises = factor["contribution"] * explainer.link.sign > 0
                assert factor["direction"] == ("raises" if raises else "lowers")
            full = explanation(explainer, record, explainer.explain_one(explainer.encoder.row(record)), everything)
            listed = sum(f["contribution"] for f in full["factors"])  # only exact zeros are left out
            assert full["bias"] + listed == pytest.approx(full["score"], abs=1e-9)

    check()


def test_a_decreasing_sigmoid_calibrator_turns_the_direction_around() -> None:
    from ccml.models.serving.calibration_map import CalibrationMap
    from ccml.models.serving.explainer import Link

    rising = Link("sigmoid_calibration", CalibrationMap("sigmoid", "raw", a=-2.0, b=0.0))
    falling = Link("sigmoid_calibration", CalibrationMap("sigmoid", "raw", a=2.0, b=0.0))
    assert (rising.sign, falling.sign) == (1, -1)
    assert rising.probability(1.0) > rising.probability(0.0)
    assert falling.probability(1.0) < falling.probability(0.0)


class ConstantModel(FittedModel):
    """A plugin's model: not a scikit-learn pipeline."""

    params: ClassVar[dict[str, Any]] = {}

    def predict_proba(self, features: pd.DataFrame) -> Probabilities:
        return np.full(len(features), 0.5)

    def files(self) -> dict[str, bytes]:
        return {}


class ConstantTrainer(Trainer):
    name = "constant"

    def _fit(self, features: pd.DataFrame, target: Labels, schema: FeatureSchema) -> FittedModel:
        return ConstantModel()


def test_a_model_ccml_cannot_read_ships_no_explainer_and_says_why(table: ValidatedTable) -> None:
    result = fit(ConstantTrainer(), table, serving="sklearn")
    assert EXPLAINER_FILE not in result.artifact.files
    assert result.artifact.manifest.notes["explainer"].startswith("none: ConstantModel")
    assert load_explainer(result.artifact) is None
    with pytest.raises(ExplanationUnavailableError, match=r"has no explanations \(none: ConstantModel"):
        require_explainer(result.artifact)


def test_an_explainer_that_fails_additivity_on_the_holdout_is_not_shipped(
    monkeypatch: pytest.MonkeyPatch, table: ValidatedTable
) -> None:
    monkeypatch.setattr(explainer_export, "ADDITIVITY_TOLERANCE", -1.0)
    result = fit(RandomForestTrainer({"n_estimators": 3, "n_jobs": 1}), table)
    assert EXPLAINER_FILE not in result.artifact.files
    assert "not shipped: additivity failed on the holdout" in result.artifact.manifest.notes["explainer"]


def _arrays(result: TrainingResult) -> dict[str, Any]:
    with np.load(io.BytesIO(result.artifact.files[EXPLAINER_FILE]), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def test_a_damaged_explainer_file_is_refused(training: TrainingResult, schema: FeatureSchema) -> None:
    arrays = _arrays(training)
    looping = {**arrays, "left": np.where(arrays["left"] >= 0, 0, -1)}  # a child pointing back at the root
    with pytest.raises(PredictionError, match="not numbered after its parent"):
        Explainer.from_bytes(pack(looping), schema, "v", 2**30)
    with pytest.raises(PredictionError, match=r"explainer\.npz cannot be read"):
        Explainer.from_bytes(b"PK\x03\x04 not a zip", schema, "v", 2**30)
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays, "kind": np.array([{"code": "runs"}], dtype=object)})
    with pytest.raises(PredictionError, match="cannot be read"):  # object arrays need pickle: refused
        Explainer.from_bytes(buffer.getvalue(), schema, "v", 2**30)


def test_an_explainer_file_that_inflates_past_the_limit_is_refused(
    training: TrainingResult, schema: FeatureSchema
) -> None:
    data = training.artifact.files[EXPLAINER_FILE]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        inflated = sum(entry.file_size for entry in archive.infolist())
    Explainer.from_bytes(data, schema, "v", inflated)
    with pytest.raises(PredictionError, match="inflates to"):
        Explainer.from_bytes(data, schema, "v", inflated - 1)


def test_a_served_version_with_an_unreadable_explainer_answers_unavailable_not_a_crash(
    training: TrainingResult,
) -> None:
    damaged = ModelArtifact(training.artifact.manifest, {**training.artifact.files, EXPLAINER_FILE: b"junk"})
    slot = ExplainerSlot(top=3)
    predictor = SklearnPredictor(ModelArtifact(damaged.manifest, damaged.files, training.artifact.pipeline))
    with capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(ExplanationUnavailableError, match=r"explainer\.npz cannot be read"):
                slot.explainer(predictor)
    assert [entry["event"] for entry in logs] == ["explainer_unreadable"]  # read and logged once
    healthy = SklearnPredictor(training.artifact)
    assert slot.explainer(healthy).method == "tree_path"  # a new predictor: the slot reads its file
