"""Exact additive explanations of a version's model, from ``explainer.npz`` and NumPy alone.

The file is plain arrays, written at training time by ``ccml.models.training.explainer_export``
and read here with ``np.load(allow_pickle=False)``: nothing in it runs as code. Every method
splits the model's *score* into a bias plus one contribution per schema feature, exactly:

* tree ensembles (random forest, histogram gradient boosting): path contributions (Saabas).
  Each node carries the expected score of the rows that reached it; a split's feature gets
  ``value(child) - value(parent)`` along the row's path, so the leaf's value is the root's plus
  the contributions. A forest averages its trees' class-1 fractions (scale ``probability``); a
  boosting model adds its trees' raw scores to a baseline (scale ``log-odds``).
* logistic regression: ``coef * (x - mean)`` per estimator column (``x`` standardised, ``mean``
  its training mean), bias ``intercept + coef . mean`` (scale ``log-odds``).

One-hot columns are summed back to the schema feature they encode. ``link`` maps the score
(bias + contributions) to the completion probability: identity (forest), logistic (boosting,
logistic regression) or a calibrator stored as data (Platt sigmoid, isotonic interpolation).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from ccml.core.errors import PredictionError
from ccml.core.schema import FeatureSchema
from ccml.models.serving.calibration_map import CalibrationMap
from ccml.models.serving.encoding import FloatMatrix, RecordEncoder
from ccml.models.serving.input_plan import FEW_ROWS, InputPlan

FORMAT: Final = 1
LinkKind = Literal["identity", "logistic", "sigmoid_calibration", "isotonic_calibration"]
LINKS: Final = ("identity", "logistic", "sigmoid_calibration", "isotonic_calibration")
# 1 / (1 + exp(-s)): the logistic link of raw log-odds scores, as a sigmoid map.
LOGISTIC: Final = CalibrationMap("sigmoid", "raw", a=-1.0, b=0.0)
METHODS: Final = {"forest": "tree_path", "boosting": "tree_path", "linear": "linear"}


def pack(arrays: dict[str, Any]) -> bytes:
    """Write ``arrays`` (NumPy arrays, numbers and strings) as the bytes of an ``.npz`` file."""
    buffer = io.BytesIO()
    named: dict[str, Any] = {name: np.asarray(value) for name, value in arrays.items()}
    np.savez_compressed(buffer, **named)
    return buffer.getvalue()


def _unpack(data: bytes, max_bytes: int) -> dict[str, np.ndarray[Any, Any]]:
    # A small zip can inflate to gigabytes: refuse before NumPy decompresses anything.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        inflated = sum(entry.file_size for entry in archive.infolist())
    if inflated > max_bytes:
        raise ValueError(f"inflates to {inflated} bytes (limit {max_bytes})")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


@dataclass(frozen=True)
class Link:
    """Score -> completion probability: monotone, so a contribution's sign is its direction. A
    calibrated version's link is its ``CalibrationMap``, the one its ONNX graph is served through;
    the logistic link is the sigmoid map with a = -1, b = 0."""

    kind: LinkKind
    calibration: CalibrationMap | None = None

    @property
    def sign(self) -> int:
        """+1 when a higher score means a higher probability, -1 when it means a lower one."""
        mapping = self.calibration
        if mapping is not None and mapping.method == "sigmoid":
            return -1 if mapping.a > 0 else 1  # p = 1 / (1 + exp(a s + b)): rises with s when a < 0
        if mapping is not None and mapping.y and mapping.y[-1] < mapping.y[0]:
            return -1
        return 1

    def probabilities(self, scores: FloatMatrix) -> FloatMatrix:
        """Apply the link to an array of scores."""
        if self.calibration is not None:
            return self.calibration.apply(scores)
        return np.clip(scores, 0.0, 1.0)

    def probability(self, score: float) -> float:
        """Apply the link to one score (plain Python, the one-record path)."""
        if self.calibration is not None:
            return self.calibration.one(score)
        return 0.0 if score < 0.0 else 1.0 if score > 1.0 else score


def _text(arrays: dict[str, np.ndarray[Any, Any]], name: str) -> str:
    value = arrays[name]
    if value.dtype.kind != "U" or value.shape != ():
        raise ValueError(f"{name} is not a string")
    return str(value)


def _link(arrays: dict[str, np.ndarray[Any, Any]]) -> Link:
    kind = _text(arrays, "link")
    if kind not in LINKS:
        raise ValueError(f"unknown link {kind!r}")
    if kind == "sigmoid_calibration":
        a, b = (float(v) for v in np.asarray(arrays["calibrator"], dtype=np.float64).reshape(2))
        return Link("sigmoid_calibration", CalibrationMap("sigmoid", "raw", a=a, b=b))
    if kind == "isotonic_calibration":
        xs = np.asarray(arrays["calibrator_x"], dtype=np.float64)
        ys = np.asarray(arrays["calibrator_y"], dtype=np.float64)
        if xs.ndim != 1 or xs.shape != ys.shape or len(xs) < 1 or np.any(np.diff(xs) < 0):
            raise ValueError("the isotonic calibrator's thresholds are not an increasing curve")
        return Link(
            "isotonic_calibration", CalibrationMap("isotonic", "raw", x=tuple(xs.tolist()), y=tuple(ys.tolist()))
        )
    if kind == "logistic":
        return Link("logistic", LOGISTIC)
    return Link("identity")


class Explainer:
    """A version's model as an additive explainer: ``bias + sum(contributions) == score`` and
    ``link(score) ==`` the predicted probability (checked on the holdout before it shipped).

    ``explain_one`` (one record, plain Python) and ``explain`` (many, NumPy) take schema-order
    rows as ``RecordEncoder`` makes them and return contributions in schema feature order.
    """

    def __init__(self, arrays: dict[str, np.ndarray[Any, Any]], schema: FeatureSchema) -> None:
        if int(arrays["format"]) != FORMAT:
            raise ValueError(f"format {int(arrays['format'])} is not {FORMAT}")
        self.kind = _text(arrays, "kind")
        if self.kind not in METHODS:
            raise ValueError(f"unknown model kind {self.kind!r}")
        self.method = METHODS[self.kind]
        self.scale = "probability" if self.kind == "forest" else "log-odds"
        self.link = _link(arrays)
        self.features = list(schema.feature_names)
        self.encoder = RecordEncoder(schema)
        self.plan = InputPlan.from_json(_text(arrays, "plan"))
        # The schema feature each estimator column encodes: numbers first, then one-hot blocks.
        owners = [c.source for c in self.plan.numeric] + [
            c.source for c in self.plan.categorical for _ in range(c.width)
        ]
        if any(not 0 <= j < len(self.features) for j in owners):
            raise ValueError("the input plan names a feature the schema does not have")
        self.owners = np.asarray(owners, dtype=np.int64)
        if self.kind == "linear":
            self._load_linear(arrays)
        else:
            self._load_trees(arrays)

    # -- loading ---------------------------------------------------------------------------
    def _load_linear(self, arrays: dict[str, np.ndarray[Any, Any]]) -> None:
        self.coef = np.asarray(arrays["coef"], dtype=np.float64).reshape(-1)
        self.reference = np.asarray(arrays["reference"], dtype=np.float64).reshape(-1)
        if self.coef.shape != (self.plan.width,) or self.reference.shape != self.coef.shape:
            raise ValueError("coefficients and reference do not match the input plan's width")
        self.bias = float(np.asarray(arrays["intercept"], dtype=np.float64).reshape(())) + float(
            self.coef @ self.reference
        )
        self._coef, self._reference, self._owners = self.coef.tolist(), self.reference.tolist(), self.owners.tolist()

    def _load_trees(self, arrays: dict[str, np.ndarray[Any, Any]]) -> None:
        feature = np.asarray(arrays["feature"], dtype=np.int64)
        threshold = np.asarray(arrays["threshold"], dtype=np.float64)
        left = np.asarray(arrays["left"], dtype=np.int64)
        right = np.asarray(arrays["right"], dtype=np.int64)
        value = np.asarray(arrays["value"], dtype=np.float64)
        roots = np.asarray(arrays["roots"], dtype=np.int64)
        n = len(feature)
        if any(a.shape != (n,) for a in (threshold, left, right, value)) or roots.ndim != 1 or not len(roots):
            raise ValueError("the tree arrays differ in length")
        internal = np.flatnonzero(feature >= 0)
        # Children come after their parent (as scikit-learn numbers them): every path ends, and
        # a damaged file cannot make a traversal loop.
        if np.any(feature[internal] >= self.plan.width) or np.any(roots < 0) or np.any(roots >= n):
            raise ValueError("a split names a column outside the input plan, or a root outside the nodes")
        if np.any(left[internal] <= internal) or np.any(right[internal] <= internal) or np.any(right[internal] >= n):
            raise ValueError("a child is not numbered after its parent")
        if np.any(left[internal] >= n) or not np.all(np.isfinite(value)):
            raise ValueError("a child outside the nodes, or a value that is not finite")
        weight = float(np.asarray(arrays["tree_weight"], dtype=np.float64).reshape(()))
        base = float(np.asarray(arrays["base"], dtype=np.float64).reshape(()))
        self.float32_inputs = bool(np.asarray(arrays["float32_inputs"]).reshape(()))
        # Each node's contribution (its value minus its parent's, weighted) and the schema
        # feature of the split that led to it; roots get none.
        delta = np.zeros(n)
        owner = np.zeros(n, dtype=np.int64)
        for side in (left, right):
            children = side[internal]
            delta[children] = weight * (value[children] - value[internal])
            owner[children] = self.owners[feature[internal]]
        depth = np.zeros(n, dtype=np.int64)
        for node in internal:  # parents first: children are numbered after them
            depth[left[node]] = depth[right[node]] = depth[node] + 1
        self.max_depth = int(depth.max())
        self.bias = base + weight * float(value[roots].sum())
        self.feature, self.threshold, self.left, self.right = feature, threshold, left, right
        self.delta, self.owner, self.roots = delta, owner, roots
        self._lists = (feature.tolist(), threshold.tolist(), left.tolist(), right.tolist(), delta.tolist())
        self._owner, self._roots = owner.tolist(), roots.tolist()

    @classmethod
    def from_bytes(cls, data: bytes, schema: FeatureSchema, version: str, max_bytes: int) -> Explainer:
        """Read an ``explainer.npz``; anything that is not a valid one raises ``PredictionError``."""
        try:
            return cls(_unpack(data, max_bytes), schema)
        except Exception as exc:  # a parser fed bytes from a store: a bad file, never a crash
            raise PredictionError(f"model {version}: explainer.npz cannot be read: {exc}"[:500]) from exc

    # -- explaining ------------------------------------------------------------------------
    def explain_one(self, values: list[float]) -> list[float]:
        """One schema-order row -> contributions per schema feature (the score is ``bias + sum``)."""
        x = self.plan.row(values)
        contributions = [0.0] * len(self.features)
        if self.kind == "linear":
            for column, (coef, reference, owner) in enumerate(
                zip(self._coef, self._reference, self._owners, strict=True)
            ):
                contributions[owner] += coef * (x[column] - reference)
            return contributions
        if self.float32_inputs:  # scikit-learn's trees compare float32 inputs
            x = np.array(x, dtype=np.float32).tolist()
        feature, threshold, left, right, delta = self._lists
        owner = self._owner
        for root in self._roots:
            node = root
            split = feature[node]
            while split >= 0:
                node = left[node] if x[split] <= threshold[node] else right[node]
                contributions[owner[node]] += delta[node]
                split = feature[node]
        return contributions

    def explain(self, matrix: FloatMatrix) -> FloatMatrix:
        """Schema-order rows -> contributions, one row per record, one column per schema feature."""
        if len(matrix) <= FEW_ROWS:
            few = [self.explain_one(values) for values in matrix.tolist()]
            return np.array(few, dtype=np.float64).reshape(len(matrix), len(self.features))
        x = self.plan.transform(matrix)
        n, width = len(x), len(self.features)
        if self.kind == "linear":
            grouping = np.zeros((self.plan.width, width))
            grouping[np.arange(self.plan.width), self.owners] = 1.0
            return np.asarray(((x - self.reference) * self.coef) @ grouping, dtype=np.float64)
        if self.float32_inputs:
            x = x.astype(np.float32).astype(np.float64)
        nodes = np.tile(self.roots, (n, 1))
        rows = np.repeat(np.arange(n), len(self.roots)).reshape(nodes.shape)
        out = np.zeros(n * width)
        for _ in range(self.max_depth):
            split = self.feature[nodes]
            active = split >= 0
            if not active.any():
                break
            row, node, column = rows[active], nodes[active], split[active]
            child = np.where(x[row, column] <= self.threshold[node], self.left[node], self.right[node])
            nodes[active] = child
            out += np.bincount(row * width + self.owner[child], weights=self.delta[child], minlength=n * width)
        return out.reshape(n, width)
