"""The promotion gate: a challenger replaces the champion only if it is not worse."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ccml.core.artifact import PromotionDecision
from ccml.models.training.evaluation import HIGHER_IS_BETTER


@dataclass(frozen=True)
class PromotionGate:
    """Compare scores on the same holdout rows.

    The challenger must always reach ``floor`` (for ``brier``, a loss: stay under it), so a
    useless model never ships even when the champion scores as badly on a degenerate holdout.
    With a champion it must also score at least the champion's score minus ``tolerance``
    (for ``brier``: at most the champion's plus ``tolerance``).
    """

    metric: str = "roc_auc"
    tolerance: float = 0.005
    floor: float = 0.7

    def decide(
        self, challenger: float, champion: float | None = None, champion_version: str | None = None
    ) -> PromotionDecision:
        """Judge ``challenger``'s score against the floor and, when there is one, the champion's."""
        sign = 1.0 if HIGHER_IS_BETTER[self.metric] else -1.0
        if math.isnan(challenger):
            promoted, reason = False, f"challenger {self.metric} is undefined"
        elif sign * (challenger - self.floor) < 0:
            promoted, reason = False, f"challenger {self.metric} {challenger:.4f} misses the floor {self.floor:.4f}"
        elif champion is None or math.isnan(champion):
            promoted, reason = True, f"challenger {self.metric} {challenger:.4f} reaches the floor {self.floor:.4f}"
        else:
            promoted = sign * (challenger - champion) >= -self.tolerance
            gap = sign * (challenger - champion)
            shortfall = f"{-gap:.4f}" if -gap >= 1e-4 else f"{-gap:.1e}"
            if not promoted:
                verdict = f"{shortfall} worse than the champion, beyond the tolerance {self.tolerance:g}: not promoted"
            elif gap > -5e-5:  # equal at the 4 decimals shown (the same model: float noise)
                verdict = "at least as good: promoted"
            else:
                verdict = f"{shortfall} worse, within the tolerance {self.tolerance:g}: promoted"
            # Plain words: which two scores, of which versions, on which rows.
            reason = (
                f"challenger {self.metric} {challenger:.4f} vs champion {champion_version} {champion:.4f} "
                f"on the challenger's holdout: {verdict}"
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
