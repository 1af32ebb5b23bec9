"""The promotion gate: a challenger replaces the champion only if it is not worse."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ccml.core.artifact import PromotionDecision
from ccml.models.evaluation import HIGHER_IS_BETTER


@dataclass(frozen=True)
class PromotionGate:
    """Compare scores on the same holdout rows.

    With a champion: promote if the challenger is at least the champion's score minus
    ``tolerance`` (for ``brier``, a loss: at most the champion's plus ``tolerance``).
    Without one: promote if the challenger reaches ``floor`` (for ``brier``: stays under it).
    """

    metric: str = "roc_auc"
    tolerance: float = 0.005
    floor: float = 0.7

    def decide(
        self, challenger: float, champion: float | None = None, champion_version: str | None = None
    ) -> PromotionDecision:
        sign = 1.0 if HIGHER_IS_BETTER[self.metric] else -1.0
        if math.isnan(challenger):
            promoted, reason = False, f"challenger {self.metric} is undefined"
        elif champion is None or math.isnan(champion):
            promoted = sign * (challenger - self.floor) >= 0
            relation = "reaches" if promoted else "misses"
            reason = f"challenger {self.metric} {challenger:.4f} {relation} the floor {self.floor:.4f}"
        else:
            promoted = sign * (challenger - champion) >= -self.tolerance
            relation = "within tolerance of or better than" if promoted else "worse than"
            reason = (
                f"challenger {self.metric} {challenger:.4f} is {relation} champion {champion_version} "
                f"{champion:.4f} (tolerance {self.tolerance:g})"
            )
        return PromotionDecision(
            promoted=promoted,
            reason=reason,
            metric=self.metric,
            challenger_score=challenger,
            champion_score=champion,
            champion_version=champion_version,
            tolerance=self.tolerance,
            floor=self.floor,
        )
