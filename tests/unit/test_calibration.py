"""Calibrated trainers (``CCML_CALIBRATION``): one estimator plus one map, exported to ONNX with
the map as data, served by both backends alike; the map agrees with scikit-learn's calibrators."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.calibration import _SigmoidCalibration
from sklearn.isotonic import IsotonicRegression

from ccml.core.model_files import ONNX_FILE
from ccml.core.settings import Settings
from ccml.core.types import ValidatedTable
from ccml.models.serving.calibration_map import CalibrationMap
from ccml.models.serving.onnx import OnnxPredictor
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.models.training.export import CALIBRATED_PARITY_TOLERANCE
from ccml.models.training.trainers import (
    HistGradientBoostingTrainer,
    LogisticRegressionTrainer,
    RandomForestTrainer,
    SklearnTrainer,
)
from tests.helpers import fit

TRAINERS = [RandomForestTrainer, HistGradientBoostingTrainer, LogisticRegressionTrainer]
SMALL = {RandomForestTrainer: {"n_estimators": 15}, HistGradientBoostingTrainer: {"max_iter": 30}}


def _isotonic(seed: int) -> IsotonicRegression:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=300)
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * x))).astype(float)
    return IsotonicRegression(out_of_bounds="clip").fit(x, y)


@given(seed=st.integers(0, 50), scores=st.lists(st.floats(-6, 6), min_size=1, max_size=20))
def test_the_isotonic_map_interpolates_as_scikit_learn(seed: int, scores: list[float]) -> None:
    fitted = _isotonic(seed)
    mapped = CalibrationMap("isotonic", "raw", x=tuple(fitted.X_thresholds_), y=tuple(fitted.y_thresholds_))
    expected = fitted.predict(np.array(scores))
    np.testing.assert_allclose(mapped.apply(np.array(scores)), expected, atol=1e-12)
    np.testing.assert_allclose([mapped.one(s) for s in scores], expected, atol=1e-12)


@given(a=st.floats(-20, 20), b=st.floats(-5, 5), scores=st.lists(st.floats(-50, 50), min_size=1, max_size=20))
def test_the_sigmoid_map_is_scikit_learns(a: float, b: float, scores: list[float]) -> None:
    fitted = _SigmoidCalibration()
    fitted.a_, fitted.b_ = a, b
    mapped = CalibrationMap("sigmoid", "probability", a=a, b=b)
    expected = fitted.predict(np.array(scores))
    np.testing.assert_allclose(mapped.apply(np.array(scores)), expected, atol=1e-12)
    np.testing.assert_allclose([mapped.one(s) for s in scores], expected, atol=1e-12)


def test_a_map_round_trips_and_bad_maps_are_refused() -> None:
    fitted = _isotonic(1)
    mapped = CalibrationMap("isotonic", "probability", x=tuple(fitted.X_thresholds_), y=tuple(fitted.y_thresholds_))
    assert CalibrationMap.from_json(mapped.to_json()) == mapped
    for bad in (
        {"method": "platt", "score": "raw", "a": 1, "b": 0, "x": [], "y": []},
        {"method": "isotonic", "score": "raw", "a": 0, "b": 0, "x": [0.0, 1.0], "y": [0.5]},
        {"method": "isotonic", "score": "raw", "a": 0, "b": 0, "x": [1.0, 0.0], "y": [0.1, 0.2]},
    ):
        with pytest.raises(ValueError, match=r"calibration|isotonic map"):
            CalibrationMap.from_json(json.dumps(bad))


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("trainer_class", TRAINERS, ids=lambda t: t.name)
def test_a_calibrated_version_serves_the_same_probabilities_on_both_backends(
    trainer_class: type[SklearnTrainer], method: str, table: ValidatedTable
) -> None:
    trainer = trainer_class(SMALL.get(trainer_class), calibration=method)  # type: ignore[arg-type]
    result = fit(trainer, table)
    manifest = result.artifact.manifest
    assert manifest.calibration == method
    assert ONNX_FILE in result.artifact.files, manifest.notes
    assert f"{method} calibration map" in manifest.notes["onnx"]
    records = table.features.head(200)
    reference = SklearnPredictor(result.artifact).predict_proba(records)
    onnx = OnnxPredictor(result.artifact)
    np.testing.assert_allclose(onnx.predict_proba(records), reference, atol=CALIBRATED_PARITY_TOLERANCE)
    one = [onnx.predict_one(record) for record in records.head(20).to_dict(orient="records")]
    np.testing.assert_allclose(one, reference[:20], atol=CALIBRATED_PARITY_TOLERANCE)
    # Calibration moves the probabilities: the served ones are not the base model's.
    assert not np.allclose(
        reference,
        result.model.pipeline[-1]
        .calibrated_classifiers_[0]
        .estimator.predict_proba(result.model.pipeline[:-1].transform(records))[:, 1],
    )


def test_auto_takes_each_trainers_measured_default_and_settings_choose_otherwise() -> None:
    for trainer_class in TRAINERS:
        assert trainer_class(calibration="auto").calibration == trainer_class.default_calibration
        chosen = trainer_class.from_settings(Settings(calibration="isotonic"))
        assert chosen.calibration == "isotonic"
        assert chosen.describe()["calibration"] == "isotonic"


def test_an_uncalibrated_version_records_none(table: ValidatedTable) -> None:
    result = fit(LogisticRegressionTrainer(calibration="none"), table)
    assert result.artifact.manifest.calibration == "none"
    assert "calibration map" not in result.artifact.manifest.notes["onnx"]
