"""Read a fitted pipeline's estimator into the plain arrays of ``explainer.npz``, and check them.

The serving side (``ccml.models.serving.explainer``) explains predictions from these arrays
with NumPy alone. This module knows scikit-learn's fitted state: a random forest's trees
(``tree_``), histogram gradient boosting's predictors (``nodes``), a logistic regression's
coefficients, and a ``CalibratedClassifierCV(ensemble=False)`` around any of them (its base
estimator's score, and its calibrator as data). Like the ONNX export, the file ships only when
the serving explainer, reading the very bytes that will be stored, reproduces scikit-learn's
probabilities on the holdout: ``bias + sum(contributions)``, through the link, within
``ADDITIVITY_TOLERANCE``; otherwise the manifest's ``notes.explainer`` says why there is none.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd
import structlog
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from ccml.core.schema import FeatureSchema
from ccml.core.types import TrainingResult
from ccml.models.serving.explainer import FORMAT, Explainer, pack
from ccml.models.training.calibrated import calibration_of

log = structlog.get_logger(__name__)

ADDITIVITY_TOLERANCE: Final = 1e-6
CHECK_ROWS: Final = 20_000
_CHUNK_ROWS: Final = 100_000


class NotExplainableError(Exception):
    """The fitted model is not one this module can read (the message says why)."""


def _base_and_link(estimator: Any) -> tuple[Any, dict[str, Any]]:
    """The estimator whose score is explained, and the link arrays from that score to the probability."""
    if isinstance(estimator, CalibratedClassifierCV):
        try:
            base, mapping = calibration_of(estimator)
        except ValueError as exc:
            raise NotExplainableError(str(exc)) from exc
        assert mapping is not None  # a CalibratedClassifierCV always has its map
        if mapping.method == "sigmoid":
            return base, {"link": "sigmoid_calibration", "calibrator": [mapping.a, mapping.b]}
        return base, {
            "link": "isotonic_calibration",
            "calibrator_x": np.asarray(mapping.x, dtype=np.float64),
            "calibrator_y": np.asarray(mapping.y, dtype=np.float64),
        }
    if isinstance(estimator, RandomForestClassifier):
        return estimator, {"link": "identity"}
    if isinstance(estimator, HistGradientBoostingClassifier | LogisticRegression):
        return estimator, {"link": "logistic"}
    raise NotExplainableError(f"{type(estimator).__name__} has no exact explainer")


def _positive(estimator: Any) -> int:
    classes = [int(c) for c in estimator.classes_]
    if sorted(classes) != [0, 1]:
        raise NotExplainableError(f"classes {classes} are not 0 and 1")
    return classes.index(1)


def _flatten(trees: list[tuple[Any, Any, Any, Any, Any]]) -> dict[str, Any]:
    """Concatenate trees given as (feature, threshold, left, right, value) with leaves' feature -1."""
    parts: dict[str, list[Any]] = {"feature": [], "threshold": [], "left": [], "right": [], "value": []}
    roots, offset = [], 0
    for feature, threshold, left, right, value in trees:
        internal = feature >= 0
        parts["feature"].append(np.where(internal, feature, -1))
        parts["threshold"].append(np.where(internal, threshold, 0.0))
        parts["left"].append(np.where(internal, left + offset, -1))
        parts["right"].append(np.where(internal, right + offset, -1))
        parts["value"].append(value)
        roots.append(offset)
        offset += len(feature)
    out: dict[str, Any] = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    for name in ("feature", "left", "right"):
        out[name] = out[name].astype(np.int32 if offset < 2**31 else np.int64)
    out["roots"] = np.asarray(roots, dtype=np.int64)
    return out


def _forest(forest: RandomForestClassifier) -> dict[str, Any]:
    positive = _positive(forest)
    trees = []
    for tree in forest.estimators_:
        state = tree.tree_
        counts = state.value[:, 0, :]
        totals = counts.sum(axis=1)
        fraction = np.divide(counts[:, positive], totals, out=np.zeros(len(totals)), where=totals > 0)
        trees.append((state.feature, state.threshold, state.children_left, state.children_right, fraction))
    # Trees compare float32 inputs with float64 thresholds; the forest averages its trees.
    return {**_flatten(trees), "kind": "forest", "base": 0.0, "tree_weight": 1.0 / len(trees), "float32_inputs": True}


def _expectations(nodes: Any) -> Any:
    """Each node's count-weighted mean of the leaf values below it (children are numbered after parents)."""
    value = nodes["value"].astype(np.float64)
    count = nodes["count"].astype(np.float64)
    for node in range(len(nodes) - 1, -1, -1):
        if nodes["is_leaf"][node]:
            continue
        left, right = nodes["left"][node], nodes["right"][node]
        total = count[left] + count[right]
        weights = (count[left], count[right]) if total > 0 else (1.0, 1.0)
        value[node] = (weights[0] * value[left] + weights[1] * value[right]) / (weights[0] + weights[1])
    return value


def _boosting(model: HistGradientBoostingClassifier) -> dict[str, Any]:
    _positive(model)
    trees = []
    for iteration in model._predictors:  # one TreePredictor per iteration for two classes
        nodes = iteration[0].nodes
        if np.any(nodes["is_categorical"]):
            raise NotExplainableError("native categorical splits")
        feature = np.where(nodes["is_leaf"] == 1, -1, nodes["feature_idx"].astype(np.int64))
        left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
        trees.append((feature, nodes["num_threshold"], left, right, _expectations(nodes)))
    base = float(np.asarray(model._baseline_prediction).reshape(-1)[0])
    return {**_flatten(trees), "kind": "boosting", "base": base, "tree_weight": 1.0, "float32_inputs": False}


def _linear(model: LogisticRegression, reference: Any) -> dict[str, Any]:
    _positive(model)
    if reference is None:
        raise NotExplainableError("no training means of the estimator's input were recorded")
    coef = np.asarray(model.coef_, dtype=np.float64)
    if coef.shape[0] != 1:
        raise NotExplainableError("more than one row of coefficients")
    return {"kind": "linear", "coef": coef[0], "intercept": float(model.intercept_[0]), "reference": reference}


def explainer_arrays(pipeline: Any, reference: Any = None) -> dict[str, Any]:
    """The ``explainer.npz`` arrays of a fitted ``build_feature_pipeline`` pipeline.

    ``reference``: the training mean of the estimator's input (``training_input_means``), the
    point a linear model's contributions are measured from.

    Raises:
        NotExplainableError: the pipeline or its estimator is not one ccml can explain exactly.
    """
    # export.py imports this module (and fitting.py, which export.py imports): imported here,
    # not at the top, to keep the import graph acyclic.
    from ccml.models.training.export import plan_from_pipeline

    plan = plan_from_pipeline(pipeline)
    if plan is None:
        raise NotExplainableError("the pipeline is not ccml's feature pipeline")
    base, link = _base_and_link(pipeline[-1])
    if isinstance(base, RandomForestClassifier):
        model = _forest(base)
    elif isinstance(base, HistGradientBoostingClassifier):
        model = _boosting(base)
    elif isinstance(base, LogisticRegression):
        model = _linear(base, reference)
    else:
        raise NotExplainableError(f"{type(base).__name__} has no exact explainer")
    return {"format": FORMAT, "plan": plan.to_json(), **link, **model}


def _linear_estimator(pipeline: Any) -> bool:
    estimator = pipeline[-1] if hasattr(pipeline, "steps") else None
    if isinstance(estimator, CalibratedClassifierCV):
        estimator = estimator.estimator
    return isinstance(estimator, LogisticRegression)


def training_input_means(model: Any, features: pd.DataFrame) -> Any:
    """The mean estimator input over the training part, for a linear model's explainer (else None)."""
    pipeline = getattr(model, "pipeline", None)
    if pipeline is None or not _linear_estimator(pipeline) or not len(features):
        return None
    transform = pipeline[:-1]
    total = None
    for start in range(0, len(features), _CHUNK_ROWS):  # bounded memory on large tables
        part = np.asarray(transform.transform(features.iloc[start : start + _CHUNK_ROWS]), dtype=np.float64)
        total = part.sum(axis=0) if total is None else total + part.sum(axis=0)
    return None if total is None else total / len(features)


def export_explainer(result: TrainingResult, schema: FeatureSchema) -> tuple[bytes | None, str]:
    """``explainer.npz`` for ``result``'s model, checked on its holdout, and a note for the manifest."""
    pipeline = getattr(result.model, "pipeline", None)
    if pipeline is None or result.holdout_scores is None:
        return None, f"none: {type(result.model).__name__} is not a scikit-learn pipeline ccml can read"
    try:
        data = pack(explainer_arrays(pipeline, result.input_means))
        explainer = Explainer.from_bytes(data, schema, "unsaved", max_bytes=len(data) * 1000 + 2**20)
    except NotExplainableError as exc:
        return None, f"none: {exc}"
    except Exception as exc:  # anything else in reading the estimator: ship without, say why
        log.warning("explainer_export_failed", error=str(exc)[:300])
        return None, f"none: {type(exc).__name__}: {str(exc)[:300]}"
    encoded = pipeline[0].transform(result.holdout_features[:CHECK_ROWS])
    scores = explainer.bias + explainer.explain(encoded).sum(axis=1)
    difference = np.abs(explainer.link.probabilities(scores) - result.holdout_scores[:CHECK_ROWS])
    worst = float(difference.max()) if len(difference) else 0.0
    if not worst <= ADDITIVITY_TOLERANCE:
        return None, f"not shipped: additivity failed on the holdout (max |p diff| {worst:.2e})"
    rows = f"{len(encoded):,} holdout rows"
    return data, f"{explainer.method} on the {explainer.scale} scale; additivity on {rows}: max |p diff| {worst:.1e}"
