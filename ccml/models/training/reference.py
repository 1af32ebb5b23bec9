"""Each feature's reference distribution, counted on the rows a model is fitted on.

Numbers get ``REFERENCE_BINS`` quantile bins: the cut points are the training rows' deciles,
deduplicated (a discrete feature with few values has fewer distinct quantiles) and above the
smallest value (so no bin is empty by construction); the outer bins are open-ended, so a live
value beyond the training range still has a bin. Categories, ordinal values and booleans get one
bin each. The shares come from ``ccml.core.drift.FeatureBins``, the code that counts live inputs.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from ccml.core.drift import CategoryReference, DriftReference, FeatureBins, NumericReference
from ccml.core.schema import Feature, FeatureSchema

REFERENCE_BINS: Final = 10


def _numeric(column: pd.Series, bins: int) -> NumericReference:
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    present = values[~np.isnan(values)]
    edges: list[float] = []
    if present.size:
        # Ten significant digits: the manifest shows 39.32182, not 39.32182000000001 (the shares are
        # counted with the rounded edges, so they stay exact).
        quantiles = np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1])
        cuts = np.unique([float(f"{cut:.10g}") for cut in quantiles])
        edges = [float(cut) for cut in cuts[cuts > present.min()]]
    layout = NumericReference(edges=edges, shares=[0.0] * (len(edges) + 1), missing=0.0)
    shares = _shares(FeatureBins(layout), values.tolist())
    return NumericReference(edges=edges, shares=shares[:-1], missing=shares[-1])


def _categories(feature: Feature, column: pd.Series) -> CategoryReference:
    categories: list[bool | int | str] = [False, True] if feature.type == "boolean" else list(feature.category_list)
    layout = CategoryReference(categories=categories, shares=[0.0] * len(categories), missing=0.0)
    shares = _shares(FeatureBins(layout), column.tolist())
    return CategoryReference(categories=categories, shares=shares[:-2], unseen=shares[-2], missing=shares[-1])


def _shares(bins: FeatureBins, values: list[object]) -> list[float]:
    counts = bins.count(values)
    total = max(int(counts.sum()), 1)
    return [float(count) / total for count in counts]


def build_reference(schema: FeatureSchema, features: pd.DataFrame, bins: int = REFERENCE_BINS) -> DriftReference:
    """Every schema feature's distribution over ``features`` (the training part, columns named as the features)."""
    references = {
        feature.name: (
            _numeric(features[feature.name], bins)
            if feature.type in ("numeric", "integer")
            else _categories(feature, features[feature.name])
        )
        for feature in schema.features
    }
    return DriftReference(rows=len(features), features=references)
