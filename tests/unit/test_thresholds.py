"""Decision thresholds as targets (``CCML_THRESHOLD_POLICY``): a target recall of the students who
will not complete, or an alert budget, chosen on out-of-fold training scores and recorded in the
manifest; the served threshold follows the version."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccml.core.decision import served_threshold
from ccml.core.errors import ConfigError
from ccml.core.settings import Settings
from ccml.core.types import ValidatedTable
from ccml.models.serving.onnx import build_onnx_predictor
from ccml.models.training.evaluation import compute_metrics, reliability_curve
from ccml.models.training.export import export_for_serving
from ccml.models.training.fitting import EvaluationPlan, train_and_evaluate
from ccml.models.training.thresholds import choose_threshold
from ccml.models.training.trainers import LogisticRegressionTrainer
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.local import LocalModelStore

scores_and_labels = st.integers(2, 200).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda labels: 0 in labels),
    )
)
shares = st.floats(0.01, 0.99)


@given(data=scores_and_labels, recall=shares)
def test_the_recall_threshold_is_the_lowest_that_flags_enough_non_completers(
    data: tuple[list[float], list[int]], recall: float
) -> None:
    scores, labels = np.array(data[0]), np.array(data[1], dtype=np.int8)
    rule = choose_threshold("recall", recall, 0.5, scores, labels, "test")
    negatives = scores[labels == 0]
    needed = math.ceil(recall * len(negatives) - 1e-9)
    assert np.sum(negatives < rule.threshold) >= needed
    assert rule.achieved is not None
    assert rule.achieved >= recall - 1e-9
    # Any lower threshold among the scores flags too few: the rule is as lenient as it can be.
    lower = rule.threshold if rule.threshold >= 1.0 else float(np.max(negatives[negatives < rule.threshold]))
    assert rule.threshold >= 1.0 or np.sum(negatives < lower) < needed


@given(data=scores_and_labels, budget=shares)
def test_the_alert_budget_is_never_exceeded_and_nearly_used(data: tuple[list[float], list[int]], budget: float) -> None:
    scores, labels = np.array(data[0]), np.array(data[1], dtype=np.int8)
    rule = choose_threshold("alert_budget", budget, 0.5, scores, labels, "test")
    allowed = math.floor(budget * len(scores) + 1e-9)
    flagged = int(np.sum(scores < rule.threshold))
    assert flagged <= allowed
    assert rule.achieved == pytest.approx(flagged / len(scores))
    # Ties aside, the next student up would break the budget.
    tied = int(np.sum(scores == rule.threshold))
    assert flagged + tied > allowed


def test_a_policy_without_its_target_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="CCML_THRESHOLD_TARGET"):
        choose_threshold("recall", None, 0.5, np.array([0.2, 0.8]), np.array([0, 1], dtype=np.int8), "test")
    with pytest.raises(ConfigError, match="CCML_THRESHOLD_TARGET"):
        RetrainWorkflow.from_settings(Settings(threshold_policy="alert_budget"), LocalModelStore(".m"), None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("policy", "target"), [("recall", 0.8), ("alert_budget", 0.1)])
def test_the_chosen_threshold_is_recorded_scored_and_served(policy: str, target: float, table: ValidatedTable) -> None:
    plan = EvaluationPlan(threshold_policy=policy, threshold_target=target)  # type: ignore[arg-type]
    result = export_for_serving("onnx", train_and_evaluate(LogisticRegressionTrainer(), table, plan))
    manifest = result.artifact.manifest
    rule = manifest.decision
    assert rule is not None
    assert (rule.policy, rule.target) == (policy, target)
    assert "out-of-fold" in rule.chosen_on
    assert rule.achieved is not None
    assert rule.achieved >= target if policy == "recall" else rule.achieved <= target
    assert rule.threshold != 0.5
    # The holdout metrics are at the chosen threshold, and the API serves it whatever the setting says.
    assert manifest.evaluation.holdout.threshold == rule.threshold
    expected = compute_metrics(result.holdout_target, result.holdout_scores, rule.threshold)  # type: ignore[arg-type]
    assert manifest.evaluation.holdout.confusion_matrix == expected.confusion_matrix
    predictor = build_onnx_predictor(Settings(decision_threshold=0.5), result.artifact)
    assert predictor.threshold == rule.threshold


def test_the_fixed_policy_serves_the_configured_threshold(table: ValidatedTable) -> None:
    result = export_for_serving("onnx", train_and_evaluate(LogisticRegressionTrainer(), table))
    rule = result.artifact.manifest.decision
    assert rule is not None
    assert (rule.policy, rule.threshold) == ("fixed", 0.5)
    assert build_onnx_predictor(Settings(decision_threshold=0.3), result.artifact).threshold == 0.3
    assert served_threshold(None, 0.4) == 0.4


@given(
    data=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 1)), min_size=1, max_size=300),
    bins=st.integers(2, 20),
)
def test_the_reliability_curve_accounts_for_every_row(data: list[tuple[float, int]], bins: int) -> None:
    scores = np.array([s for s, _ in data])
    labels = np.array([y for _, y in data], dtype=np.int8)
    curve = reliability_curve(labels, scores, bins)
    assert sum(b.count for b in curve.bins) == len(data)
    error = 0.0
    for b in curve.bins:
        inside = (scores >= b.low) & ((scores < b.high) | (b.high == 1.0))
        assert b.count == int(inside.sum())
        if b.count:
            assert b.mean_predicted == pytest.approx(scores[inside].mean())
            assert b.observed == pytest.approx(labels[inside].mean())
            error += b.count * abs(scores[inside].mean() - labels[inside].mean())
    assert curve.expected_calibration_error == pytest.approx(error / len(data))
