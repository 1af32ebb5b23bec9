"""Export a fitted pipeline for the ONNX serving backend, checked against scikit-learn.

``export_onnx`` converts the pipeline after its encoder. For pipelines built by
``build_feature_pipeline`` only the estimator is converted, and the feature step
(imputation, scaling, one-hot) travels as an ``InputPlan`` (``plan_from_pipeline``) in the
ONNX file's metadata: ccml applies it in Python, which is cheaper per row than ONNX
Runtime's preprocessing nodes. Any other pipeline is converted whole. Either way the result
is checked on the holdout: labels identical and probabilities within ``PARITY_TOLERANCE`` of
scikit-learn, or the ONNX file is not shipped and the manifest says why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import structlog
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ccml.core.model_files import ONNX_FILE
from ccml.core.types import TrainingResult
from ccml.models.serving.calibration_map import CALIBRATION_KEY, CalibrationMap
from ccml.models.serving.encoding import FloatMatrix
from ccml.models.serving.input_plan import CategoricalColumn, InputPlan, NumericColumn
from ccml.models.serving.onnx import PLAN_KEY, completion_column, ort_session
from ccml.models.training.fitting import with_files

log = structlog.get_logger(__name__)

PARITY_TOLERANCE = 1e-5
# A calibration map takes the graph's float32 score: a steep isotonic segment magnifies its
# rounding (seen: 1.2e-5 for gradient boosting), still far below anything a label depends on.
CALIBRATED_PARITY_TOLERANCE = 1e-4
PARITY_ROWS = 20_000


@contextlib.contextmanager
def _tree_ensemble_bool_fix() -> Iterator[None]:
    """skl2onnx 1.20 passes Python ``False`` for leaves' missing-value flag, which current
    onnx rejects in an int list ("Expected an int, got a boolean"), so histogram gradient
    boosting fails to convert. Cast it to int for the duration of a conversion."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def plan_from_pipeline(pipeline: Any) -> InputPlan | None:
    """Read the plan from a fitted ``build_feature_pipeline`` pipeline; None for any other shape
    (a plugin's own preprocessing), which the ONNX export then converts as a graph."""
    if not isinstance(pipeline, Pipeline) or len(pipeline) != 3:
        return None
    features = pipeline[1]
    if not isinstance(features, ColumnTransformer) or not hasattr(features, "transformers_"):
        return None
    numeric: list[NumericColumn] = []
    categorical: list[CategoricalColumn] = []
    for name, step, columns in features.transformers_:
        if name == "remainder" and step == "drop":
            continue
        if not isinstance(step, Pipeline) or not all(isinstance(c, int) for c in columns):
            return None
        steps = [s for _, s in step.steps]
        if not steps or not isinstance(steps[0], SimpleImputer) or steps[0].add_indicator:
            return None
        # The imputer's answer for an all-missing row is its fill value per column, whatever
        # the strategy or keep_empty_features made of it.
        fills = steps[0].transform(np.full((1, len(columns)), np.nan))[0]
        rest = steps[1:]
        if name == "numeric" and not rest:
            numeric.extend(NumericColumn(c, float(f)) for c, f in zip(columns, fills, strict=True))
        elif name == "numeric" and len(rest) == 1 and isinstance(rest[0], StandardScaler):
            scaler = rest[0]
            shifts = scaler.mean_ if scaler.with_mean else np.zeros(len(columns))
            scales = scaler.scale_ if scaler.with_std else np.ones(len(columns))
            numeric.extend(
                NumericColumn(c, float(f), float(m), float(s))
                for c, f, m, s in zip(columns, fills, shifts, scales, strict=True)
            )
        elif name == "categorical" and len(rest) == 1 and isinstance(rest[0], OneHotEncoder):
            encoder = rest[0]
            if encoder.drop is not None or encoder.handle_unknown != "ignore":
                return None
            for column, fill, categories in zip(columns, fills, encoder.categories_, strict=True):
                if list(categories) != [float(i) for i in range(len(categories))]:
                    return None
                categorical.append(CategoricalColumn(column, float(fill), len(categories)))
        else:
            return None
    if not numeric and not categorical:
        return None
    return InputPlan(tuple(numeric), tuple(categorical))


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


def _convert(model: Any, width: int, plan: InputPlan | None, calibration: CalibrationMap | None) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    estimator = model[-1] if hasattr(model, "steps") else model
    # zipmap off: probabilities as a tensor, not a list of dicts per row; raw scores where the map takes them.
    options = {"zipmap": False, **({"raw_scores": True} if calibration and calibration.score == "raw" else {})}
    with _tree_ensemble_bool_fix():
        proto = convert_sklearn(
            model, initial_types=[("input", FloatTensorType([None, width]))], options={id(estimator): options}
        )
    for key, value in ((PLAN_KEY, plan), (CALIBRATION_KEY, calibration)):
        if value is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value.to_json()
    return bytes(proto.SerializeToString())


def export_onnx(pipeline: Any, holdout: FloatMatrix, scores: Any) -> tuple[bytes | None, str]:
    """Convert ``pipeline[1:]`` (or its estimator plus an ``InputPlan``) and check parity on
    ``holdout`` (encoded rows; at most ``PARITY_ROWS`` of them) against ``scores``, scikit-learn's
    ``pipeline[1:].predict_proba(holdout)`` (the trainer has them already). Returns the graph
    (or None) and a note for the manifest."""
    model = pipeline[1:]
    # The holdout is already a random sample; beyond this many rows the check costs seconds
    # (1M-row tables: ~20 s) without telling more.
    holdout, scores = holdout[:PARITY_ROWS], scores[:PARITY_ROWS]
    try:
        plan = plan_from_pipeline(pipeline)
        estimator, calibration = calibration_of(pipeline[-1])
        if plan is not None:
            graph = _convert(estimator, plan.width, plan, calibration)
            inputs = plan.transform(holdout)
        else:
            steps = [*model.steps[:-1], (model.steps[-1][0], estimator)]
            graph = _convert(Pipeline(steps), holdout.shape[1], None, calibration)
            inputs = holdout
        runner = ort_session(graph, os.cpu_count() or 1)
        outputs = runner.run(None, {"input": inputs.astype(np.float32)})
        probabilities = completion_column(outputs[-1], calibration)
        # The graph's labels are the base estimator's; the served label is the threshold's.
        labels = model.classes_[(probabilities > 0.5).astype(int)] if calibration else outputs[0]
    except Exception as exc:  # any converter failure: ship without ONNX, say why
        log.warning("onnx_export_failed", error=str(exc)[:300])
        return None, f"not converted: {type(exc).__name__}: {str(exc)[:300]}"
    reference = scores[:, 1]
    # What model.predict returns, without scoring the rows a second time.
    expected_labels = model.classes_[np.argmax(scores, axis=1)]
    difference = float(np.max(np.abs(probabilities - reference))) if len(holdout) else 0.0
    same_labels = bool(np.array_equal(np.asarray(labels), expected_labels))
    tolerance = PARITY_TOLERANCE if calibration is None else CALIBRATED_PARITY_TOLERANCE
    if not same_labels or difference > tolerance:
        reason = f"max |p diff| {difference:.2e}, labels identical: {same_labels}"
        return None, f"not shipped: parity failed on the holdout ({reason})"
    form = "estimator + input plan" if plan is not None else "whole graph"
    if calibration is not None:
        form += f" + {calibration.method} calibration map"
    checked = f"{len(holdout):,} holdout rows"
    return graph, f"converted ({form}); parity on {checked}: labels identical, max |p diff| {difference:.1e}"


@runtime_checkable
class OnnxExportable(Protocol):
    """A fitted model that is not a scikit-learn pipeline and makes its own ONNX graph.

    The graph takes ``RecordEncoder`` rows (float32, schema order, NaN for missing values,
    category indexes) as its one input and gives per-class probabilities as its last output,
    ``[not completed, completed]``. Parity with the model is checked by the workflow's
    serving check, like every export.
    """

    def onnx_graph(self) -> bytes:
        """The model as a serialized ONNX graph."""


def export_for_serving(backend: str, result: TrainingResult) -> TrainingResult:
    """Add the files the ``backend`` serving backend needs to ``result``'s artifact.

    The ``onnx`` backend gets ``model.onnx`` (converted and parity-checked for scikit-learn
    pipelines, made by the model itself for an ``OnnxExportable``); the manifest's
    ``notes.onnx`` says how, or why there is none. Other backends serve the model's own files.
    """
    if backend != "onnx":
        return result
    model = result.model
    pipeline = getattr(model, "pipeline", None)
    if pipeline is not None and result.holdout_scores is not None:
        encoded = pipeline[0].transform(result.holdout_features[:PARITY_ROWS])
        positive = result.holdout_scores[:PARITY_ROWS]
        # scikit-learn's two-column answer, rebuilt from the holdout scores (no second scoring).
        scores = np.column_stack([1.0 - positive, positive])
        graph, note = export_onnx(pipeline, encoded, scores)
    elif isinstance(model, OnnxExportable):
        graph, note = model.onnx_graph(), "made by the trainer's model; parity checked on the holdout before promotion"
    else:
        graph, note = None, f"not converted: {type(model).__name__} has no ONNX export"
    files = dict(result.artifact.files)
    if graph is not None:
        files[ONNX_FILE] = graph
    notes = {**result.artifact.manifest.notes, "onnx": note}
    artifact = with_files(result.artifact.manifest.model_copy(update={"notes": notes}), files, pipeline)
    return dataclasses.replace(result, artifact=artifact)
