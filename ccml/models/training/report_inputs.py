"""What a version's evaluation report shows, gathered when the version is trained.

The report (``ccml.models.training.report_page``) is made from the manifest plus what only the
training run has: the holdout's labels and scores, the champion's scores on the same rows,
permutation importance, and the store's horizon models. Permutation importance is measured on
schema features (never one-hot columns): the drop in holdout ROC AUC when one feature's values
are shuffled across rows, averaged over ``IMPORTANCE_REPEATS`` seeded shuffles.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ccml.core.artifact import Manifest, Metrics
from ccml.core.contracts import FittedModel, Labels, ModelStore
from ccml.core.errors import CcmlError

Scores = np.ndarray[Any, np.dtype[np.float64]]
IMPORTANCE_REPEATS: Final = 5
# Beyond this many holdout rows the importance costs seconds per feature without changing its order.
IMPORTANCE_ROWS: Final = 5_000
_HORIZON_ALIAS = re.compile(r"^day-(\d+)$")


@dataclass(frozen=True)
class ChampionScores:
    """The champion's probabilities on the challenger's holdout, and its metrics at its own threshold."""

    version: str
    scores: Scores
    metrics: Metrics


@dataclass(frozen=True)
class Importance:
    """One feature's permutation importance: mean and spread of the ROC AUC drop."""

    feature: str
    mean: float
    std: float


@dataclass(frozen=True)
class HorizonPoint:
    """A horizon model of the store (alias ``day-<day>``) and its holdout scores."""

    day: int
    version: str
    roc_auc: float
    pr_auc: float
    current: bool = False


@dataclass(frozen=True)
class ReportInputs:
    """Everything one report shows."""

    manifest: Manifest
    target: Labels
    scores: Scores
    champion: ChampionScores | None = None
    importance: list[Importance] = field(default_factory=list)
    horizons: list[HorizonPoint] = field(default_factory=list)


def permutation_importance(
    model: FittedModel, features: pd.DataFrame, target: Labels, *, random_state: int = 42
) -> list[Importance]:
    """Each feature's ROC AUC drop when shuffled, largest first; empty when the holdout has one class."""
    if len(np.unique(target)) < 2:
        return []
    rng = np.random.default_rng(random_state)
    if len(features) > IMPORTANCE_ROWS:
        sample = np.sort(rng.choice(len(features), IMPORTANCE_ROWS, replace=False))
        features, target = features.iloc[sample].reset_index(drop=True), target[sample]
    baseline = float(roc_auc_score(target, model.predict_proba(features)))
    rows = len(features)
    found = []
    for column in features.columns:
        # The repeats of one feature go to the model as one frame: one call instead of one per
        # shuffle (a forest's per-call overhead is most of the cost on a small holdout).
        values = features[column].to_numpy()
        shuffled = pd.concat([features] * IMPORTANCE_REPEATS, ignore_index=True)
        shuffled[column] = np.concatenate([values[rng.permutation(rows)] for _ in range(IMPORTANCE_REPEATS)])
        scores = model.predict_proba(shuffled).reshape(IMPORTANCE_REPEATS, rows)
        drops = [baseline - float(roc_auc_score(target, repeat)) for repeat in scores]
        found.append(Importance(str(column), float(np.mean(drops)), float(np.std(drops))))
    return sorted(found, key=lambda item: -item.mean)


def horizon_points(store: ModelStore, manifest: Manifest, alias: str) -> list[HorizonPoint]:
    """The store's horizon models (aliases ``day-N``) with this version in place of its own alias's;
    empty for a version that is not a horizon model."""
    own = _HORIZON_ALIAS.match(alias)
    if own is None:
        return []
    holdout = manifest.evaluation.holdout
    points = {int(own.group(1)): HorizonPoint(int(own.group(1)), "this version", holdout.roc_auc, holdout.pr_auc, True)}
    for name, record in store.aliases().items():
        match = _HORIZON_ALIAS.match(name)
        if match is None or int(match.group(1)) in points:
            continue
        try:
            other = store.manifest(record.version).evaluation.holdout
        except CcmlError:  # a damaged version elsewhere in the store must not cost this report
            continue
        if not math.isnan(other.roc_auc):
            points[int(match.group(1))] = HorizonPoint(int(match.group(1)), record.version, other.roc_auc, other.pr_auc)
    return [points[day] for day in sorted(points)]
