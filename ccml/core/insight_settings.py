"""The settings of what a version tells the people who act on it: probability calibration, the
decision threshold policy, explanations, the fairness report and drift monitoring.

``Settings`` inherits them (read from ``CCML_*`` like every other setting); they live here so
the one place every knob is declared stays readable.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings

from ccml.core.drift import DriftThresholds

Calibration = Literal["none", "sigmoid", "isotonic"]
CalibrationChoice = Literal["auto", "none", "sigmoid", "isotonic"]
ThresholdPolicy = Literal["fixed", "recall", "alert_budget"]


class InsightSettings(BaseSettings):
    """Calibration, thresholds, explanations, fairness and drift (a base of ``Settings``)."""

    # Calibration, decision thresholds and explanations
    calibration: CalibrationChoice = Field(
        "auto",
        description="Probability calibration of the built-in trainers: auto (each trainer's measured default) "
        "| none | sigmoid | isotonic.",
    )
    threshold_policy: ThresholdPolicy = Field(
        "fixed",
        description="How training chooses the decision threshold: fixed (CCML_DECISION_THRESHOLD) | recall "
        "(flag CCML_THRESHOLD_TARGET of the students who will not complete) | alert_budget (flag the "
        "CCML_THRESHOLD_TARGET share most at risk).",
    )
    threshold_target: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="The recall or the alert budget (a share, e.g. 0.1) of the recall and alert_budget policies."
    )
    explain_top: Annotated[int, Field(ge=1, le=100)] = Field(
        5, description="Factors per explanation (?explain=true, ccml predict --explain) unless ?top= says otherwise."
    )

    # Fairness report
    fairness_permutations: Annotated[int, Field(ge=0, le=100_000)] = Field(
        1000, description="Shuffles of group membership in the fairness permutation tests (0 = no tests)."
    )
    fairness_alpha: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.05, description="Significance level of a group column's tests (split over its groups)."
    )
    fairness_auc_gap: Annotated[float, Field(ge=0, le=1)] = Field(
        0.05, description="A group's ROC AUC this far below the others' (and significant) is flagged."
    )
    fairness_rate_gap: Annotated[float, Field(ge=0, le=1)] = Field(
        0.05, description="A group's FPR or FNR this far above the others' (and significant) is flagged."
    )
    fairness_min_group_size: Annotated[int, Field(ge=1)] = Field(
        30, description="Groups of fewer holdout rows are reported but never flagged."
    )

    # Drift monitoring
    drift_watch_psi: Annotated[float, Field(gt=0)] = Field(0.1, description="PSI from which a feature is 'watch'.")
    drift_alert_psi: Annotated[float, Field(gt=0)] = Field(0.25, description="PSI from which a feature is 'drift'.")
    drift_min_rows: Annotated[int, Field(ge=1)] = Field(500, description="Fewer live rows: status 'too_few_rows'.")

    @field_validator("drift_alert_psi")
    @classmethod
    def _alert_above_watch(cls, value: float, info: ValidationInfo) -> float:
        if value <= (watch := info.data.get("drift_watch_psi", 0.0)):
            raise ValueError(f"must be above CCML_DRIFT_WATCH_PSI ({watch})")
        return value

    def drift_thresholds(self) -> DriftThresholds:
        """The PSI thresholds and the live sample size of the drift statuses."""
        return DriftThresholds(self.drift_watch_psi, self.drift_alert_psi, self.drift_min_rows)
