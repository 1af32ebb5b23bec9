"""The feature pipeline, built from the schema.

``SchemaEncoder`` turns records into a float matrix in schema order (see
``ccml.models.serving.encoding``). Everything after it is plain scikit-learn on floats, which is
what other runtimes (ONNX) can execute too.
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

from ccml.core.schema import FeatureSchema
from ccml.models.serving.encoding import FloatMatrix, RecordEncoder


class SchemaEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """The pipeline's first step: ``RecordEncoder`` as a scikit-learn transformer.

    Args:
        schema: the feature schema as a plain dict (``FeatureSchema.model_dump()``), so the
            fitted pipeline carries the schema it was trained with.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def fit(self, X: object = None, y: object = None) -> SchemaEncoder:  # noqa: N803 (sklearn's name)
        """Build the record encoder from the schema (the data teaches it nothing)."""
        self.encoder_ = RecordEncoder(FeatureSchema.model_validate(self.schema))
        self.n_features_out_ = self.encoder_.width
        return self

    # The stored state is plain data (the schema dict): the encoder is rebuilt on load, so a
    # model file never has to describe ccml's internal objects (see ccml.core.model_files).
    def __getstate__(self) -> dict[str, Any]:
        # A copy: object.__getstate__ returns the live __dict__.
        state: dict[str, Any] = dict(super().__getstate__())
        state.pop("encoder_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "n_features_out_" in state:
            self.encoder_ = RecordEncoder(FeatureSchema.model_validate(self.schema))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray[Any, np.dtype[np.object_]]:
        """The schema's feature names, in output column order."""
        return np.asarray([f.name for f in self.encoder_.features], dtype=object)

    def transform(self, X: pd.DataFrame | Sequence[Mapping[str, Any]]) -> FloatMatrix:  # noqa: N803
        """Encode records or a DataFrame as floats in schema order (see ``RecordEncoder``)."""
        return self.encoder_.encode(X)


def build_feature_pipeline(schema: FeatureSchema, estimator: Any, *, scale_numeric: bool = False) -> Pipeline:
    """``encode`` (schema -> floats) -> ``features`` (impute, one-hot, maybe scale) -> ``clf``.

    The one-hot encoder's categories come from the schema, so the output width is fixed
    whatever subset of categories the training data happens to contain; an unseen
    category encodes as all zeros. An ordinal feature is a number (its category's position)
    and goes with the numeric columns.
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
