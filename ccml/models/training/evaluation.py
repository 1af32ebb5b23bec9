"""Holdout split, metrics and cross-validation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, train_test_split

from ccml.core.artifact import ConfusionMatrix, CrossValidation, HoldoutSpec, Metrics
from ccml.core.contracts import FittedModel
from ccml.core.decision import ReliabilityBin, ReliabilityCurve

Labels = np.ndarray[Any, np.dtype[np.int8]]
Scores = np.ndarray[Any, np.dtype[np.float64]]

# Direction of each metric, for the promotion gate: brier is a loss, the rest are scores.
HIGHER_IS_BETTER: dict[str, bool] = {
    "roc_auc": True,
    "pr_auc": True,
    "f1": True,
    "precision": True,
    "recall": True,
    "accuracy": True,
    "brier": False,
}


def holdout_split(n_rows: int, target: Labels, fraction: float, random_state: int) -> tuple[Any, Any, HoldoutSpec]:
    """Stratified train/holdout positions, and a spec that pins them down."""
    positions = np.arange(n_rows)
    train, holdout = train_test_split(positions, test_size=fraction, random_state=random_state, stratify=target)
    holdout = np.sort(holdout)
    spec = HoldoutSpec(
        fraction=fraction,
        random_state=random_state,
        stratified=True,
        train_rows=len(train),
        holdout_rows=len(holdout),
        index_sha256=hashlib.sha256(holdout.astype(np.int64).tobytes()).hexdigest(),
    )
    return np.sort(train), holdout, spec


def compute_metrics(target: Labels, probability: Scores, threshold: float = 0.5) -> Metrics:
    """Every metric at once; ranking metrics are NaN-free only when both classes occur."""
    predicted = (probability >= threshold).astype(np.int8)
    tn, fp, fn, tp = (int(x) for x in confusion_matrix(target, predicted, labels=[0, 1]).ravel())
    both = len(np.unique(target)) == 2
    return Metrics(
        roc_auc=float(roc_auc_score(target, probability)) if both else float("nan"),
        pr_auc=float(average_precision_score(target, probability)) if both else float("nan"),
        f1=float(f1_score(target, predicted, zero_division=0)),
        precision=float(precision_score(target, predicted, zero_division=0)),
        recall=float(recall_score(target, predicted, zero_division=0)),
        accuracy=float(accuracy_score(target, predicted)),
        brier=float(brier_score_loss(target, probability)),
        threshold=threshold,
        n_rows=len(target),
        positives=int(target.sum()),
        confusion_matrix=ConfusionMatrix(tn=tn, fp=fp, fn=fn, tp=tp),
    )


def reliability_curve(target: Labels, probability: Scores, bins: int = 10) -> ReliabilityCurve:
    """Mean predicted probability against observed completion rate in ``bins`` equal-width bins
    (the last one closed at 1), and the expected calibration error over them."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, bins - 1)
    out: list[ReliabilityBin] = []
    error = 0.0
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        mean = float(probability[members].mean()) if count else None
        observed = float(target[members].mean()) if count else None
        if mean is not None and observed is not None:
            error += count * abs(mean - observed)
        out.append(
            ReliabilityBin(
                low=float(edges[b]), high=float(edges[b + 1]), count=count, mean_predicted=mean, observed=observed
            )
        )
    return ReliabilityCurve(bins=out, expected_calibration_error=error / max(len(target), 1))


def metric_value(metrics: Metrics, name: str) -> float:
    """One metric of ``metrics`` by its settings name (``roc_auc``, ``brier``, ...)."""
    return float(getattr(metrics, name))


def cross_validate(
    fit: Callable[[pd.DataFrame, Labels], FittedModel],
    features: pd.DataFrame,
    target: Labels,
    *,
    folds: int,
    random_state: int,
    threshold: float,
    progress: Callable[[int, Metrics], None] | None = None,
) -> CrossValidation:
    """Stratified k-fold: ``fit`` a model per fold, score its held-out fold, report mean and std."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    per_fold: list[Metrics] = []
    for fold, (train, test) in enumerate(splitter.split(features, target), start=1):
        model = fit(features.iloc[train].reset_index(drop=True), target[train])
        scores = model.predict_proba(features.iloc[test].reset_index(drop=True))
        metrics = compute_metrics(target[test], scores, threshold)
        per_fold.append(metrics)
        if progress is not None:
            progress(fold, metrics)
    names = list(HIGHER_IS_BETTER)
    values = {name: np.array([metric_value(m, name) for m in per_fold]) for name in names}
    return CrossValidation(
        folds=folds,
        mean={name: float(v.mean()) for name, v in values.items()},
        std={name: float(v.std()) for name, v in values.items()},
    )
