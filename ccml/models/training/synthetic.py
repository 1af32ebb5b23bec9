"""Synthetic training data in any schema's columns: the embedded default dataset.

The generative model (each feature's parameters come from its ``synthetic`` hints):

1. Each student has a latent engagement level ``z ~ N(0, 1)``.
2. A numeric, integer or boolean feature with loading ``a`` draws
   ``u = a*z + sqrt(1 - a^2)*e`` with ``e ~ N(0, 1)``, so its correlation with engagement is
   ``a``; ``Phi(u)`` (uniform on 0..1) is scaled onto ``[low, high]`` (rounded for integers,
   thresholded at 0.5 for booleans). Categorical features draw from their ``weights``.
3. Completion log-odds are ``b + sum_j w_j * s_j + noise * n`` where ``s_j`` is feature j's
   standardized uniform score, ``w_j`` its ``weight`` and ``n ~ N(0, 1)``; ``b`` is solved so
   the expected completion share equals ``positive_rate``. Completion is then a Bernoulli draw.
4. Each declared group with categories (gender, age band, ...) is drawn from its ``weights``,
   independently of engagement, from a generator of its own (so the features are the same with
   or without groups); a group value's ``shift`` is added to its students' completion log-odds
   and its ``noise`` draws extra log-odds noise for them: the known disparity the fairness
   report should find. Groups without categories are not generated.
5. Each feature and group cell goes missing with probability ``missing_rate``.

Because completion is a noisy function of noisy features, a model reaches a meaningful but
imperfect ROC AUC (about 0.85 on the built-in schema).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ccml.core.errors import SchemaError
from ccml.core.schema import FeatureSchema, Target

_SQRT12 = math.sqrt(12.0)


def _sigmoid(x: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    result: np.ndarray[Any, np.dtype[np.float64]] = 1.0 / (1.0 + np.exp(-x))
    return result


def _solve_intercept(logits: np.ndarray[Any, np.dtype[np.float64]], rate: float) -> float:
    low, high = -30.0, 30.0
    for _ in range(80):
        middle = (low + high) / 2
        if _sigmoid(logits + middle).mean() < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _not_completed_value(target: Target) -> object:
    completed = target.completed_value
    if isinstance(completed, int) and not isinstance(completed, bool) and completed in (0, 1):
        return 1 - completed
    raise SchemaError(f"the synthetic generator needs a 0/1 target; {target.column} completes at {completed!r}")


def generate(schema: FeatureSchema, rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` synthetic students in the schema's CSV columns (ids, features, target)."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)
    hints = schema.synthetic
    engagement = rng.standard_normal(rows)
    logits = np.zeros(rows)
    columns: dict[str, Any] = {}
    for position, column in enumerate(schema.id_columns):
        columns[column] = (
            np.arange(hints.id_start, hints.id_start + rows) if position == 0 else np.zeros(rows, dtype=int)
        )

    for feature in schema.features:
        spec = feature.synthetic
        if feature.has_categories:
            categories = feature.category_list
            weights = np.asarray(spec.weights or [1.0] * len(categories), dtype=float)
            if len(weights) != len(categories):
                raise SchemaError(f"feature {feature.name}: synthetic weights must match its categories")
            picks = rng.choice(len(categories), size=rows, p=weights / weights.sum())
            columns[feature.column] = np.asarray(categories, dtype=object)[picks]
            continue
        loading = spec.loading
        latent = loading * engagement + math.sqrt(1.0 - loading**2) * rng.standard_normal(rows)
        uniform = ndtr(latent)
        logits += spec.weight * (uniform - 0.5) * _SQRT12
        if feature.type == "boolean":
            columns[feature.column] = uniform >= 0.5
            continue
        low, high = feature.bounds
        low = spec.low if spec.low is not None else low
        high = spec.high if spec.high is not None else high
        if feature.type == "integer":
            values: np.ndarray[Any, Any] = np.minimum(np.floor(low + uniform * (high - low + 1)), high).astype(int)
        else:
            values = np.round(low + uniform * (high - low), 4)
        columns[feature.column] = values

    group_columns = _draw_groups(schema, rows, seed, logits)
    columns.update(group_columns)
    logits += hints.noise * rng.standard_normal(rows)
    logits += _solve_intercept(logits, hints.positive_rate)
    completed = rng.random(rows) < _sigmoid(logits)
    other = _not_completed_value(schema.target)
    columns[schema.target.column] = np.where(completed, np.asarray(schema.target.completed_value), np.asarray(other))

    frame = pd.DataFrame(columns)
    if hints.missing_rate > 0:
        for feature in schema.features:
            holes = rng.random(rows) < hints.missing_rate
            frame[feature.column] = frame[feature.column].astype(object).where(~holes, None)
        holes_rng = np.random.default_rng([seed, 2])
        for column in group_columns:
            holes = holes_rng.random(rows) < hints.missing_rate
            frame[column] = frame[column].astype(object).where(~holes, None)
    return frame


def _draw_groups(schema: FeatureSchema, rows: int, seed: int, logits: np.ndarray[Any, Any]) -> dict[str, Any]:
    """The groups' columns; adds each group value's ``shift`` and ``noise`` to ``logits`` in place."""
    rng = np.random.default_rng([seed, 1])
    columns: dict[str, Any] = {}
    for group in schema.groups:
        if group.categories is None or group.feature:  # a feature's column is drawn as the feature
            continue
        spec = group.synthetic
        weights = np.asarray(spec.weights or [1.0] * len(group.categories), dtype=float)
        if len(weights) != len(group.categories):
            raise SchemaError(f"group {group.name}: synthetic weights must match its categories")
        unknown = sorted((set(spec.shift) | set(spec.noise)) - {str(c) for c in group.categories})
        if unknown:
            raise SchemaError(f"group {group.name}: synthetic shift/noise name unknown categories {unknown}")
        picks = rng.choice(len(group.categories), size=rows, p=weights / weights.sum())
        values = np.asarray(group.categories, dtype=object)[picks]
        extra = rng.standard_normal(rows)
        for position, category in enumerate(group.categories):
            members = picks == position
            logits[members] += spec.shift.get(str(category), 0.0) + spec.noise.get(str(category), 0.0) * extra[members]
        columns[group.column] = values
    return columns
