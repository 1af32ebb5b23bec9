"""How a version scored, as its manifest records it: metrics at the decision threshold, the
cross-validation summary, the reliability curve and the fairness report (``Evaluation``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ccml.core.decision import ReliabilityCurve
from ccml.core.fairness_report import FairnessReport


class _Model(BaseModel):
    # A holdout with one class has NaN ranking metrics; plain JSON would write them as null,
    # which then fails to load and makes the whole store unreadable. "NaN" strings round-trip.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


class ConfusionMatrix(_Model):
    """Counts of true and false negatives and positives at the decision threshold."""

    tn: int
    fp: int
    fn: int
    tp: int


class Metrics(_Model):
    """Scores of one model on one labelled set, at one decision threshold."""

    roc_auc: float
    pr_auc: float
    f1: float
    precision: float
    recall: float
    accuracy: float
    brier: float
    threshold: float
    n_rows: int
    positives: int
    confusion_matrix: ConfusionMatrix


class CrossValidation(_Model):
    """Mean and standard deviation of each metric over ``folds`` stratified cross-validation folds."""

    folds: int
    mean: dict[str, float]
    std: dict[str, float]


class Evaluation(_Model):
    """How a model scored: on the holdout, in cross-validation, per group (``fairness``, left out when None)."""

    holdout: Metrics
    cross_validation: CrossValidation | None = None
    reliability: Annotated[ReliabilityCurve | None, Field(exclude_if=lambda curve: curve is None)] = None
    fairness: Annotated[FairnessReport | None, Field(exclude_if=lambda report: report is None)] = None
