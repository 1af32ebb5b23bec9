"""A fitted ``CalibratedClassifierCV(ensemble=False)`` read as its base estimator plus one
``CalibrationMap`` (plain data): what the ONNX export ships beside the base estimator's graph and
what the explainer links the base score through, so both apply the very same map."""

from __future__ import annotations

from typing import Any

from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.isotonic import IsotonicRegression

from ccml.models.serving.calibration_map import CalibrationMap


def calibration_of(clf: Any) -> tuple[Any, CalibrationMap | None]:
    """The estimator to convert and the calibration map to apply after it: a calibrated model's
    base estimator and its one map, or ``clf`` itself and None.

    Raises:
        ValueError: a calibrated model of several (``ensemble=True``) or unknown calibrators.
    """
    if not isinstance(clf, CalibratedClassifierCV):
        return clf, None
    if len(clf.calibrated_classifiers_) != 1:
        raise ValueError("only CalibratedClassifierCV(ensemble=False) exports: one estimator, one calibration map")
    calibrated = clf.calibrated_classifiers_[0]
    base, (calibrator,) = calibrated.estimator, calibrated.calibrators
    # What scikit-learn feeds the calibrator: decision_function where the estimator has one.
    score: Any = "raw" if hasattr(base, "decision_function") else "probability"
    if isinstance(calibrator, _SigmoidCalibration):
        return base, CalibrationMap("sigmoid", score, a=float(calibrator.a_), b=float(calibrator.b_))
    if isinstance(calibrator, IsotonicRegression):
        x = tuple(float(v) for v in calibrator.X_thresholds_)
        return base, CalibrationMap("isotonic", score, x=x, y=tuple(float(v) for v in calibrator.y_thresholds_))
    raise ValueError(f"calibrator {type(calibrator).__name__} has no ONNX export")
