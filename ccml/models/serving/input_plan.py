"""The fitted feature step (impute, scale, one-hot) as plain data, applied without scikit-learn.

``build_feature_pipeline`` makes ``encode -> features -> clf``. The ``features`` step only
fills missing values, optionally standardises numbers, and one-hot encodes category codes:
a few numbers per column. ``ccml.models.training.export.plan_from_pipeline`` reads those
numbers from the fitted step, so the ONNX backend can ship the estimator alone and do the column work itself: in
ONNX Runtime the imputer, one-hot and concat nodes cost more per row than the trees
(measured: ~33 µs per call with them, ~20 µs without), and a Python loop over a handful
of columns costs a few microseconds. ``transform`` (NumPy, for batches) and ``row`` (pure
Python, for one record) compute the same thing; both match scikit-learn's transform, which
the export checks on the holdout and the tests check on generated records.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ccml.models.serving.encoding import FloatMatrix

# Up to this many rows, ``row`` per row beats NumPy's fixed cost per array operation.
FEW_ROWS = 8


@dataclass(frozen=True)
class NumericColumn:
    """Output = ``((x if x is not NaN else fill) - shift) / scale``."""

    source: int
    fill: float
    shift: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class CategoricalColumn:
    """Output = one-hot of the category code over ``width`` columns (all zeros when the code
    is outside ``0..width-1``, as for an unseen category); a missing code becomes ``fill``."""

    source: int
    fill: float
    width: int


@dataclass(frozen=True)
class InputPlan:
    """The estimator's input, column block by column block: numeric columns, then one-hot blocks."""

    numeric: tuple[NumericColumn, ...]
    categorical: tuple[CategoricalColumn, ...]

    @property
    def width(self) -> int:
        """Number of columns the estimator takes."""
        return len(self.numeric) + sum(c.width for c in self.categorical)

    def to_json(self) -> str:
        """Return the plan as JSON, the form kept in the ONNX graph's metadata (``from_json`` reads it back)."""
        return json.dumps(
            {
                "numeric": [[c.source, c.fill, c.shift, c.scale] for c in self.numeric],
                "categorical": [[c.source, c.fill, c.width] for c in self.categorical],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> InputPlan:
        """Rebuild a plan from ``to_json``'s text; other text raises ``ValueError``, ``KeyError`` or ``TypeError``."""
        raw = json.loads(text)
        return cls(
            tuple(NumericColumn(int(s), float(f), float(m), float(d)) for s, f, m, d in raw["numeric"]),
            tuple(CategoricalColumn(int(s), float(f), int(w)) for s, f, w in raw["categorical"]),
        )

    def transform(self, matrix: FloatMatrix) -> FloatMatrix:
        """Schema-order rows (``RecordEncoder`` output) -> the estimator's input."""
        if len(matrix) <= FEW_ROWS:
            return np.array([self.row(values) for values in matrix.tolist()], dtype=np.float64).reshape(
                len(matrix), self.width
            )
        blocks = []
        if self.numeric:
            columns = matrix[:, [c.source for c in self.numeric]]
            fills = np.array([c.fill for c in self.numeric])
            filled = np.where(np.isnan(columns), fills, columns)
            shifts = np.array([c.shift for c in self.numeric])
            blocks.append((filled - shifts) / np.array([c.scale for c in self.numeric]))
        for column in self.categorical:
            codes = matrix[:, column.source]
            codes = np.where(np.isnan(codes), column.fill, codes)
            # A code outside 0..width-1 (unseen) matches no column: all zeros, as in the one-hot step.
            blocks.append((codes[:, None] == np.arange(column.width)).astype(np.float64))
        return np.hstack(blocks) if blocks else np.empty((len(matrix), 0))

    def row(self, values: list[float]) -> list[float]:
        """One schema-order row -> the estimator's input row: ``transform`` for a single record,
        in plain Python because NumPy's per-call overhead dominates at this size."""
        out = []
        for numeric in self.numeric:
            value = values[numeric.source]
            if math.isnan(value):
                value = numeric.fill
            out.append((value - numeric.shift) / numeric.scale)
        for categorical in self.categorical:
            code = values[categorical.source]
            if math.isnan(code):
                code = categorical.fill
            block = [0.0] * categorical.width
            if 0 <= code < categorical.width and code == int(code):
                block[int(code)] = 1.0
            out.extend(block)
        return out
