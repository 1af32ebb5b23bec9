"""Records -> float matrix in schema order, without scikit-learn.

Numbers stay as they are, booleans become 0/1, a category becomes its index in the
schema's list (an unseen category one index past the end, which the one-hot step encodes
as all zeros; an unseen ordinal value NaN, imputed like a missing one, since a rank past the
end would read as "above the highest"), a missing value becomes NaN. Both runtimes use this: the scikit-learn
pipeline through ``SchemaEncoder``, and the ONNX backend directly, so serving an ONNX
model never imports scikit-learn.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ccml.core.errors import InvalidInputError
from ccml.core.schema import Feature, FeatureSchema

if TYPE_CHECKING:
    import pandas as pd

FloatMatrix = np.ndarray[Any, np.dtype[np.float64]]


def _category_index(feature: Feature) -> dict[object, float]:
    index: dict[object, float] = {}
    for position, category in enumerate(feature.category_list):
        index[category] = float(position)
        index[str(category)] = float(position)
    return index


def _as_bool(value: object, name: str) -> float:
    if isinstance(value, bool | int | float) and value in (0, 1):
        return float(value)
    raise InvalidInputError(f"{name}: expected a boolean, got {value!r}")


class RecordEncoder:
    """Encode a DataFrame (columns named as the features) or a list of mappings."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.features = list(schema.features)
        self.indexes = [_category_index(f) if f.has_categories else None for f in self.features]
        self.unseen = [math.nan if f.type == "ordinal" else float(len(f.categories or ())) for f in self.features]
        self.width = len(self.features)

    def encode(self, records: pd.DataFrame | Sequence[Mapping[str, Any]]) -> FloatMatrix:
        """Return the records as a float matrix: one row per record, one column per feature in schema order.

        Raises:
            InvalidInputError: a DataFrame lacks a feature's column, or a boolean feature holds another value.
        """
        # pandas is only imported by callers that have DataFrames: a process serving JSON
        # records never loads it (cold start), and then ``records`` cannot be a DataFrame.
        pandas = sys.modules.get("pandas")
        if pandas is not None and isinstance(records, pandas.DataFrame):
            return self._encode_frame(records)
        return self._encode_records(cast("Sequence[Mapping[str, Any]]", records))

    def _encode_frame(self, frame: pd.DataFrame) -> FloatMatrix:
        out = np.empty((len(frame), self.width), dtype=np.float64)
        for j, (feature, index) in enumerate(zip(self.features, self.indexes, strict=True)):
            if feature.name not in frame.columns:
                raise InvalidInputError(f"{feature.name}: column missing")
            column = frame[feature.name]
            if index is None:
                out[:, j] = column.astype("float64").to_numpy()
                continue
            codes = column.map(index)
            unseen = codes.isna() & column.notna()
            out[:, j] = codes.where(~unseen, self.unseen[j]).astype("float64").to_numpy()
        return out

    def _encode_records(self, records: Sequence[Mapping[str, Any]]) -> FloatMatrix:
        # Column by column, the same rules as ``row``: one list and one NumPy conversion per
        # feature instead of one per cell (measured 2-3x faster on a 1,000-record batch).
        out = np.empty((len(records), self.width), dtype=np.float64)
        for j, (feature, index, unseen) in enumerate(zip(self.features, self.indexes, self.unseen, strict=True)):
            values = [record.get(feature.name) for record in records]
            if index is not None:
                out[:, j] = [math.nan if value is None else index.get(value, unseen) for value in values]
            elif feature.type == "boolean":
                out[:, j] = [math.nan if value is None else _as_bool(value, feature.name) for value in values]
            else:  # None becomes NaN in a float64 array, as float() of every other value
                out[:, j] = np.array(values, dtype=np.float64)
        return out

    def row(self, record: Mapping[str, Any]) -> list[float]:
        """One record as a schema-order list of floats (plain Python: the one-record path)."""
        row = []
        for feature, index, unseen in zip(self.features, self.indexes, self.unseen, strict=True):
            value = record.get(feature.name)
            if value is None:
                row.append(math.nan)
            elif index is not None:
                row.append(index.get(value, unseen))
            elif feature.type == "boolean":
                row.append(_as_bool(value, feature.name))
            else:
                row.append(float(value))
        return row
