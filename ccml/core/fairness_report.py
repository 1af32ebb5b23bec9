"""The fairness section of a version's evaluation: per group column and group, how the model does.

Computed at training time on the holdout (``ccml.models.training.fairness``) and stored in the
manifest as ``evaluation.fairness``; the metrics' definitions and the flag rule are in the README
("Fairness report"). A metric a group cannot have (one class only) is null, with a note.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupMetrics(_Model):
    """One group's numbers on the holdout, at the decision threshold, and whether it falls behind."""

    value: str = Field(description='the group value, "(missing)" for blank or unknown cells')
    size: int
    positives: int = Field(description="holdout rows of the group that completed")
    selection_rate: float = Field(description="share predicted Completed")
    roc_auc: float | None = None
    calibration_gap: float = Field(description="mean predicted probability minus observed completion rate")
    fpr: float | None = Field(None, description="false positive rate: non-completers predicted Completed")
    fnr: float | None = Field(None, description="false negative rate: completers predicted Not Completed")
    abroca: float | None = Field(None, description="area between this group's ROC curve and the other rows'")
    p_value: float | None = Field(None, description="permutation-test p-value of the ABROCA")
    fpr_p_value: float | None = Field(None, description="permutation p-value of the FPR exceeding the others'")
    fnr_p_value: float | None = Field(None, description="permutation p-value of the FNR exceeding the others'")
    flagged: bool = False
    reasons: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class GroupColumnReport(_Model):
    """The groups of one declared group column."""

    name: str
    column: str
    permutations: int = Field(description="permutations run: fewer than the setting once the flags were settled")
    groups: list[GroupMetrics]
    notes: list[str] = Field(default_factory=list)


class FairnessReport(_Model):
    """Per group column and group: size, ROC AUC, calibration gap, FPR, FNR, ABROCA with its p-value.

    ``flagged`` lists every group that falls behind as ``"name=value: reason"``; ``notes`` says
    what was skipped and why (a declared group column missing from the training file).
    """

    threshold: float
    permutations: int
    alpha: float = Field(description="chance of any false flag in a column: Bonferroni-split over its tests")
    auc_gap: float
    rate_gap: float
    min_group_size: int
    columns: list[GroupColumnReport] = Field(default_factory=list)
    flagged: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
