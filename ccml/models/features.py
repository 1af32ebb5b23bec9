"""The feature pipeline, built from the schema.

``SchemaEncoder`` turns records (a DataFrame with the schema's feature names, or a list of
mappings such as validated API requests) into a float matrix in schema order: numbers as
they are, booleans as 0/1, categories as their index in the schema's list, an unseen
category as one index past the end, a missing value as NaN. Everything after it is plain
scikit-learn on floats, which is what other runtimes (ONNX) can execute too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ccml.core.errors import InvalidInputError
from ccml.core.schema import Feature, FeatureSchema

FloatMatrix = np.ndarray[Any, np.dtype[np.float64]]


def _category_index(feature: Feature) -> dict[object, float]:
    assert feature.categories is not None
    index: dict[object, float] = {}
    for position, category in enumerate(feature.categories):
        index[category] = float(position)
        index[str(category)] = float(position)
    return index


def _as_bool(value: object, name: str) -> float:
    if isinstance(value, bool | int | float) and value in (0, 1):
        return float(value)
    raise InvalidInputError(f"{name}: expected a boolean, got {value!r}")


class SchemaEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Encode records into a float matrix in schema order (see the module docstring).

    Args:
        schema: the feature schema as a plain dict (``FeatureSchema.model_dump()``), so the
            fitted pipeline carries the schema it was trained with.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def fit(self, X: object = None, y: object = None) -> SchemaEncoder:  # noqa: N803 (sklearn's name)
        parsed = FeatureSchema.model_validate(self.schema)
        self.features_ = parsed.features
        self.indexes_ = [_category_index(f) if f.type == "categorical" else None for f in parsed.features]
        self.n_features_out_ = len(parsed.features)
        return self

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray[Any, np.dtype[np.object_]]:
        return np.asarray([f.name for f in self.features_], dtype=object)

    def transform(self, X: pd.DataFrame | Sequence[Mapping[str, Any]]) -> FloatMatrix:  # noqa: N803
        if isinstance(X, pd.DataFrame):
            return self._transform_frame(X)
        return self._transform_records(X)

    def _transform_frame(self, frame: pd.DataFrame) -> FloatMatrix:
        out = np.empty((len(frame), self.n_features_out_), dtype=np.float64)
        for j, (feature, index) in enumerate(zip(self.features_, self.indexes_, strict=True)):
            if feature.name not in frame.columns:
                raise InvalidInputError(f"{feature.name}: column missing")
            column = frame[feature.name]
            if index is None:
                out[:, j] = pd.to_numeric(column, errors="raise").astype("float64").to_numpy()
                continue
            codes = column.map(index)
            unseen = codes.isna() & column.notna()
            out[:, j] = codes.where(~unseen, float(len(feature.categories or ()))).astype("float64").to_numpy()
        return out

    def _transform_records(self, records: Sequence[Mapping[str, Any]]) -> FloatMatrix:
        out = np.empty((len(records), self.n_features_out_), dtype=np.float64)
        specs = list(zip(self.features_, self.indexes_, strict=True))
        unseen = [float(len(f.categories or ())) for f in self.features_]
        for i, record in enumerate(records):
            row = out[i]
            for j, (feature, index) in enumerate(specs):
                value = record.get(feature.name)
                if value is None:
                    row[j] = np.nan
                elif index is not None:
                    row[j] = index.get(value, unseen[j])
                elif feature.type == "boolean":
                    row[j] = _as_bool(value, feature.name)
                else:
                    row[j] = value
        return out


def build_feature_pipeline(schema: FeatureSchema, estimator: Any, *, scale_numeric: bool = False) -> Pipeline:
    """``encode`` (schema -> floats) -> ``features`` (impute, one-hot, maybe scale) -> ``clf``.

    The one-hot encoder's categories come from the schema, so the output width is fixed
    whatever subset of categories the training data happens to contain; an unseen
    category encodes as all zeros.
    """
    numeric = [j for j, f in enumerate(schema.features) if f.is_numeric]
    categorical = [j for j, f in enumerate(schema.features) if not f.is_numeric]
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if scale_numeric:
        numeric_steps.append(("scale", StandardScaler()))
    transformers: list[tuple[str, Any, list[int]]] = []
    if numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        categories = [[float(i) for i in range(len(schema.features[j].categories or ()))] for j in categorical]
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
                        ("onehot", OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    return Pipeline(
        [
            ("encode", SchemaEncoder(schema.model_dump(mode="json"))),
            ("features", ColumnTransformer(transformers, remainder="drop")),
            ("clf", estimator),
        ]
    )
