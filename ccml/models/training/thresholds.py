"""Choose a version's decision threshold on the training data: a fixed probability, a target
recall of the students who will not complete, or an alert budget ("flag the 10% most at risk").

Scores a model gives its own training rows are optimistic (a forest has seen them), so the
recall and alert-budget policies choose on out-of-fold scores of the training part: the model
refitted on ``THRESHOLD_FOLDS`` folds, each fold scored by the fit that did not see it. The
holdout stays untouched, so its metrics show what the rule does on students the choice never saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from ccml.core.contracts import FittedModel, Labels
from ccml.core.decision import DecisionRule
from ccml.core.errors import ConfigError
from ccml.core.settings import ThresholdPolicy

Scores = np.ndarray[Any, np.dtype[np.float64]]
THRESHOLD_FOLDS: Final = 3


def check_policy(policy: ThresholdPolicy, target: float | None) -> None:
    """Refuse a recall or alert-budget policy without its target.

    Raises:
        ConfigError: naming ``CCML_THRESHOLD_TARGET``.
    """
    if policy != "fixed" and target is None:
        raise ConfigError(f"CCML_THRESHOLD_POLICY={policy} needs CCML_THRESHOLD_TARGET (a share between 0 and 1)")


def out_of_fold_scores(
    fit: Callable[[pd.DataFrame, Labels], FittedModel],
    features: pd.DataFrame,
    target: Labels,
    *,
    folds: int = THRESHOLD_FOLDS,
    random_state: int = 42,
) -> Scores:
    """Each row's score from the fit of the folds it was not in (stratified, seeded)."""
    scores = np.empty(len(features), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    for train, test in splitter.split(features, target):
        model = fit(features.iloc[train].reset_index(drop=True), target[train])
        scores[test] = model.predict_proba(features.iloc[test].reset_index(drop=True))
    return scores


def _recall_threshold(scores: Scores, target: Labels, recall: float) -> float:
    # The lowest threshold with at least ``recall`` of the non-completers strictly below it.
    negatives = np.sort(scores[target == 0])
    if not len(negatives):
        raise ConfigError("the recall threshold policy needs students who did not complete in the training data")
    needed = max(1, math.ceil(recall * len(negatives) - 1e-9))
    return float(np.nextafter(negatives[needed - 1], np.inf))


def _budget_threshold(scores: Scores, share: float) -> float:
    # The highest threshold that flags at most ``share`` of the students: ties never overflow it.
    ordered = np.sort(scores)
    allowed = math.floor(share * len(ordered) + 1e-9)
    return float(ordered[min(allowed, len(ordered) - 1)])


def choose_threshold(
    policy: ThresholdPolicy, target_value: float | None, fixed: float, scores: Scores, target: Labels, chosen_on: str
) -> DecisionRule:
    """The decision rule for ``policy`` on ``scores`` (completion probabilities) of rows labelled ``target``.

    Raises:
        ConfigError: a policy without its target, or a recall policy without non-completers.
    """
    check_policy(policy, target_value)
    if policy == "fixed":
        threshold = fixed
    elif policy == "recall":
        threshold = _recall_threshold(scores, target, float(target_value or 0))
    else:
        threshold = _budget_threshold(scores, float(target_value or 0))
    threshold = min(threshold, 1.0)
    flagged = scores < threshold
    negatives = target == 0
    achieved = float(flagged[negatives].mean()) if policy == "recall" else float(flagged.mean()) if len(scores) else 0.0
    return DecisionRule(
        policy=policy,
        target=target_value if policy != "fixed" else None,
        threshold=float(threshold),
        achieved=achieved,
        chosen_on=chosen_on,
    )
