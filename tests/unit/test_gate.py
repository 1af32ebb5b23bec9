from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccml.models.training.evaluation import HIGHER_IS_BETTER
from ccml.models.training.gate import PromotionGate

scores = st.floats(0, 1, allow_nan=False)
tolerances = st.floats(0, 0.1, allow_nan=False)
score_metrics = st.sampled_from([name for name, higher in HIGHER_IS_BETTER.items() if higher])


@given(champion=scores, gap=st.floats(1e-6, 1), tolerance=tolerances, metric=score_metrics)
def test_worse_challenger_is_never_promoted(champion: float, gap: float, tolerance: float, metric: str) -> None:
    challenger = champion - tolerance - gap
    decision = PromotionGate(metric, tolerance, floor=-2.0).decide(challenger, champion, "v1")
    assert not decision.promoted
    assert "worse than" in decision.reason


@given(champion=scores, gain=st.floats(0, 1), tolerance=tolerances, metric=score_metrics)
def test_equal_or_better_challenger_is_promoted(champion: float, gain: float, tolerance: float, metric: str) -> None:
    decision = PromotionGate(metric, tolerance, floor=0.0).decide(champion + gain, champion, "v1")
    assert decision.promoted


@given(champion=scores, gain=st.floats(0, 1), floor=scores)
def test_challenger_under_the_floor_is_never_promoted_even_if_better(
    champion: float, gain: float, floor: float
) -> None:
    # A degenerate holdout (e.g. random labels) can make a useless challenger "beat" the champion.
    challenger = champion + gain
    decision = PromotionGate("roc_auc", 0.005, floor).decide(challenger, champion, "v1")
    assert decision.promoted == (challenger >= floor)


@given(champion=scores, fraction=st.floats(0, 1), tolerance=st.floats(1e-4, 0.1))
def test_challenger_within_tolerance_is_promoted(champion: float, fraction: float, tolerance: float) -> None:
    # Half the tolerance at most keeps float rounding away from the boundary.
    challenger = champion - tolerance * fraction * 0.5
    assert PromotionGate("roc_auc", tolerance, floor=-1.0).decide(challenger, champion, "v1").promoted


def test_zero_tolerance_refuses_any_loss() -> None:
    gate = PromotionGate("roc_auc", tolerance=0.0)
    assert not gate.decide(0.8 - 1e-9, 0.8, "v1").promoted
    assert gate.decide(0.8, 0.8, "v1").promoted


@given(floor=scores, challenger=scores)
def test_first_version_must_reach_the_floor(floor: float, challenger: float) -> None:
    decision = PromotionGate("roc_auc", 0.005, floor).decide(challenger)
    assert decision.promoted == (challenger >= floor)
    assert ("reaches" if decision.promoted else "misses") in decision.reason


@given(champion=scores, gap=st.floats(1e-6, 1), tolerance=tolerances)
def test_brier_is_a_loss_lower_is_better(champion: float, gap: float, tolerance: float) -> None:
    gate = PromotionGate("brier", tolerance, floor=1.0)  # for a loss the floor is a ceiling
    assert gate.decide(champion - gap, champion, "v1").promoted
    assert not gate.decide(champion + tolerance + gap, champion, "v1").promoted


def test_brier_floor_is_a_ceiling_for_the_first_version() -> None:
    gate = PromotionGate("brier", 0.0, floor=0.2)
    assert gate.decide(0.1).promoted
    assert not gate.decide(0.3).promoted


def test_undefined_challenger_score_is_never_promoted() -> None:
    gate = PromotionGate()
    assert not gate.decide(math.nan).promoted
    assert not gate.decide(math.nan, 0.8, "v1").promoted


def test_undefined_champion_score_falls_back_to_the_floor() -> None:
    gate = PromotionGate(floor=0.7)
    assert gate.decide(0.75, math.nan, "v1").promoted
    assert not gate.decide(0.65, math.nan, "v1").promoted


def test_decision_records_both_scores_and_the_gate() -> None:
    decision = PromotionGate("pr_auc", 0.01, 0.6).decide(0.81, 0.8, "20250101T000000.000000Z")
    assert decision.challenger_score == 0.81
    assert decision.champion_score == 0.8
    assert decision.champion_version == "20250101T000000.000000Z"
    assert (decision.metric, decision.tolerance, decision.floor) == ("pr_auc", 0.01, 0.6)
    assert decision.forced is False
    assert "20250101T000000.000000Z" in decision.reason


def test_unknown_metric_is_rejected() -> None:
    with pytest.raises(KeyError):
        PromotionGate("auc").decide(0.9)


def test_the_reason_says_in_plain_words_what_was_compared_on_which_rows() -> None:
    gate = PromotionGate("roc_auc", tolerance=0.005, floor=0.7)
    worse = gate.decide(0.838, 0.903, "20260101T000000Z")
    assert worse.reason == (
        "challenger roc_auc 0.8380 vs champion 20260101T000000Z 0.9030 on the challenger's holdout: "
        "0.0650 worse than the champion, beyond the tolerance 0.005: not promoted"
    )
    assert not worse.promoted
    better = gate.decide(0.903, 0.838, "20260101T000000Z")
    assert better.reason.endswith("on the challenger's holdout: at least as good: promoted")
    close = gate.decide(0.900, 0.903, "20260101T000000Z")
    assert close.reason.endswith(": 0.0030 worse, within the tolerance 0.005: promoted")
    assert close.promoted
