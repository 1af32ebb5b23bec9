"""A calibrated model's score-to-probability map as plain data, applied without scikit-learn.

A calibrated version (``CCML_CALIBRATION``) is the base estimator plus one monotone map fitted on
out-of-fold scores (``CalibratedClassifierCV(ensemble=False)``). The ONNX export ships the base
estimator's graph and this map in the graph's metadata, and ccml applies it in Python: skl2onnx's
isotonic node looks up the nearest threshold instead of interpolating between thresholds as
scikit-learn does, which moves probabilities by a few hundredths, and a map of a few numbers costs
less than a graph node. ``score`` says what the map takes: the base graph's class-1 probability
(a forest) or its raw score (``decision_function``: gradient boosting's and logistic
regression's log-odds), which the graph outputs when converted with ``raw_scores``.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

# The ONNX metadata key holding the map's JSON (absent: the graph's probabilities are final).
CALIBRATION_KEY = "ccml.calibration"
Array = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class CalibrationMap:
    """``sigmoid``: p = 1 / (1 + exp(a*s + b)); ``isotonic``: linear interpolation of ``y`` over
    ``x`` (increasing), constant beyond either end, as scikit-learn's ``IsotonicRegression``."""

    method: Literal["sigmoid", "isotonic"]
    score: Literal["probability", "raw"]
    a: float = 0.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def to_json(self) -> str:
        """The map as JSON, the form kept in the ONNX metadata (``from_json`` reads it back)."""
        return json.dumps(
            {"method": self.method, "score": self.score, "a": self.a, "b": self.b, "x": self.x, "y": self.y}
        )

    @classmethod
    def from_json(cls, text: str) -> CalibrationMap:
        """Rebuild a map from ``to_json``'s text; anything else raises ``ValueError``, ``KeyError`` or ``TypeError``."""
        raw = json.loads(text)
        method, score = raw["method"], raw["score"]
        if method not in ("sigmoid", "isotonic") or score not in ("probability", "raw"):
            raise ValueError(f"unknown calibration {method!r} of a {score!r} score")
        x, y = tuple(float(v) for v in raw["x"]), tuple(float(v) for v in raw["y"])
        if method == "isotonic" and (not x or len(x) != len(y) or any(b < a for a, b in itertools.pairwise(x))):
            raise ValueError("an isotonic map needs as many y as x values, x increasing")
        return cls(method, score, float(raw["a"]), float(raw["b"]), x, y)

    def apply(self, scores: Array) -> Array:
        """Scores of the base model -> calibrated probabilities (vectorised)."""
        if self.method == "sigmoid":
            # Past an exponent of ~709 exp overflows (a warning, then inf): the probability is 0 either way.
            result: Array = 1.0 / (1.0 + np.exp(np.minimum(self.a * scores + self.b, 700.0)))
            return result
        return np.asarray(np.interp(scores, self.x, self.y), dtype=np.float64)

    def one(self, score: float) -> float:
        """``apply`` for one score, in plain Python (the one-record path)."""
        if self.method == "sigmoid":
            return 1.0 / (1.0 + math.exp(min(self.a * score + self.b, 700.0)))
        x, y = self.x, self.y
        if score <= x[0]:
            return y[0]
        if score >= x[-1]:
            return y[-1]
        right = bisect.bisect_right(x, score)
        left = right - 1
        span = x[right] - x[left]
        return y[left] + (y[right] - y[left]) * (score - x[left]) / span if span else y[right]
