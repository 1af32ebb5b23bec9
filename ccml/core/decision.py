"""What a version records about its probabilities and its decision threshold.

``DecisionRule`` is how the threshold was chosen (a fixed probability, a target recall of the
students who will not complete, or an alert budget) and what it achieved on the scores it was
chosen on; ``ReliabilityCurve`` is how well the probabilities match observed completion rates
on the holdout. Both live in the manifest; the serving side reads ``DecisionRule.threshold``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


class DecisionRule(_Model):
    """The decision threshold of a version and how it was chosen.

    A student is answered "Completed" when the probability is at or above ``threshold``, and is
    flagged at risk ("Not Completed") below it. ``recall``: the lowest threshold that flags at
    least ``target`` of the students who did not complete; ``alert_budget``: the highest that
    flags at most ``target`` of all students. ``achieved`` is the recall (``recall``) or the
    flagged share (``alert_budget``, ``fixed``) on the scores the threshold was chosen on.
    """

    policy: Literal["fixed", "recall", "alert_budget"]
    target: float | None = None
    threshold: float = Field(ge=0, le=1)
    achieved: float | None = None
    chosen_on: str


def served_threshold(rule: DecisionRule | None, configured: float) -> float:
    """The threshold a version is served at: the one its training chose (recall, alert budget),
    else the configured ``CCML_DECISION_THRESHOLD`` (the fixed policy, and versions made before
    ccml recorded a rule), which an operator may change without retraining."""
    return rule.threshold if rule is not None and rule.policy != "fixed" else configured


class ReliabilityBin(_Model):
    """One bin of predicted probabilities: its range, size, mean prediction and observed completion rate."""

    low: float
    high: float
    count: int
    mean_predicted: float | None
    observed: float | None


class ReliabilityCurve(_Model):
    """Predicted probability against observed completion rate, in equal-width bins of the holdout.

    ``expected_calibration_error`` is the count-weighted mean of |mean predicted - observed|.
    """

    bins: list[ReliabilityBin]
    expected_calibration_error: float
