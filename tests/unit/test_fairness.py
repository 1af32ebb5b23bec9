"""The fairness report: fairlearn agreement, ABROCA against an independent computation, the flag rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, count, false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import roc_auc_score, roc_curve

from ccml.core.fairness_report import FairnessReport, GroupMetrics
from ccml.core.schema import FeatureSchema, Group
from ccml.models.training.abroca import area_between
from ccml.models.training.fairness import FairnessPlan, evaluate_fairness
from ccml.models.training.groups import MISSING_GROUP

THRESHOLD = 0.5
PLAN = FairnessPlan(permutations=200)


def _schema(schema: FeatureSchema, *groups: Group) -> FeatureSchema:
    return schema.model_copy(update={"groups": list(groups)})


def _holdout(rows: int, seed: int, worse: str | None = None) -> tuple[np.ndarray[Any, Any], ...]:
    """Labels, scores (two decimals: ties) and a three-valued group; ``worse``'s scores are noise."""
    rng = np.random.default_rng(seed)
    target = (rng.random(rows) < 0.4).astype(np.int8)
    groups = rng.choice(np.array(["a", "b", "c"], dtype=object), rows, p=[0.5, 0.35, 0.15])
    scores = np.clip(0.35 * target + rng.random(rows) * 0.65, 0, 1)
    if worse is not None:
        inside = groups == worse
        scores[inside] = rng.random(int(inside.sum()))
    return target, np.round(scores, 2), groups


def _report(schema: FeatureSchema, target: Any, scores: Any, groups: Any, plan: FairnessPlan = PLAN) -> FairnessReport:
    frame = pd.DataFrame({"cohort": groups}, dtype=object)
    report = evaluate_fairness(
        _schema(schema, Group(name="cohort", column="Cohort")),
        frame,
        (),
        target,
        scores,
        threshold=THRESHOLD,
        plan=plan,
        random_state=1,
    )
    assert report is not None
    return report


def _by_value(report: FairnessReport) -> dict[str, GroupMetrics]:
    return {g.value: g for g in report.columns[0].groups}


def _reference_abroca(target: Any, scores: Any, inside: Any) -> float:
    """Trapezoid rule on a fine FPR grid over sklearn's ROC curves: an independent computation."""
    fpr_in, tpr_in, _ = roc_curve(target[inside], scores[inside], drop_intermediate=False)
    fpr_out, tpr_out, _ = roc_curve(target[~inside], scores[~inside], drop_intermediate=False)
    grid = np.linspace(0, 1, 400_001)
    gap = np.abs(np.interp(grid, fpr_in, tpr_in) - np.interp(grid, fpr_out, tpr_out))
    return float(np.trapezoid(gap, grid))


def test_per_group_metrics_match_fairlearn_metric_frame(schema: FeatureSchema) -> None:
    target, scores, groups = _holdout(3000, seed=2)
    groups[:7] = MISSING_GROUP  # a small group of its own, as validation makes of bad cells
    predicted = (scores >= THRESHOLD).astype(np.int8)
    frame = MetricFrame(
        metrics={
            "count": count,
            "selection_rate": selection_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
        },
        y_true=target,
        y_pred=predicted,
        sensitive_features=pd.Series(groups, name="cohort"),
    )
    auc = MetricFrame(
        metrics=roc_auc_score, y_true=target, y_pred=scores, sensitive_features=pd.Series(groups, name="cohort")
    )
    ours = _by_value(_report(schema, target, scores, groups))

    assert set(ours) == set(frame.by_group.index)
    for value, row in frame.by_group.iterrows():
        group = ours[str(value)]
        assert group.size == row["count"]
        assert group.selection_rate == pytest.approx(row["selection_rate"], abs=1e-12)
        assert group.fpr == pytest.approx(row["fpr"], abs=1e-12)
        assert group.fnr == pytest.approx(row["fnr"], abs=1e-12)
        assert group.roc_auc == pytest.approx(auc.by_group[value], abs=1e-12)


def test_abroca_matches_the_area_between_sklearn_roc_curves(schema: FeatureSchema) -> None:
    target, scores, groups = _holdout(2000, seed=4, worse="c")
    ours = _by_value(_report(schema, target, scores, groups))
    for value in ("a", "b", "c"):
        assert ours[value].abroca == pytest.approx(_reference_abroca(target, scores, groups == value), abs=1e-5)


def test_area_between_is_exact_on_crossing_curves_with_vertical_steps() -> None:
    # y = x against a curve that climbs to 1 at x = 0.5 (vertically at 0.5): the two triangles
    # between them have areas 1/8 + 1/8 (0..0.5: x vs 0; 0.5..1: 1 vs x).
    diagonal = (np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]]))
    step = (np.array([[0.0, 0.5, 0.5, 1.0]]), np.array([[0.0, 0.0, 1.0, 1.0]]))
    assert area_between(*diagonal, *step)[0] == pytest.approx(0.25, abs=1e-12)
    assert area_between(*step, *step)[0] == 0.0


def test_identical_score_distributions_give_zero_abroca(schema: FeatureSchema) -> None:
    rng = np.random.default_rng(5)
    target = (rng.random(400) < 0.4).astype(np.int8)
    scores = np.round(rng.random(400), 2)
    # The second half repeats the first half's (label, score) pairs exactly.
    target, scores = np.concatenate([target, target]), np.concatenate([scores, scores])
    groups = np.array(["first"] * 400 + ["second"] * 400, dtype=object)
    report = _report(schema, target, scores, groups)
    for group in report.columns[0].groups:
        assert group.abroca == pytest.approx(0.0, abs=1e-12)
        assert group.p_value == 1.0
        assert not group.flagged


def test_a_random_group_is_not_significant_and_a_disadvantaged_one_is_flagged(schema: FeatureSchema) -> None:
    fair = _by_value(_report(schema, *_holdout(2000, seed=6)))
    assert all(g.p_value is not None and g.p_value > 0.1 for g in fair.values()), fair
    assert not any(g.flagged for g in fair.values())

    report = _report(schema, *_holdout(2000, seed=6, worse="c"))
    unfair = _by_value(report)
    assert unfair["c"].p_value is not None
    assert unfair["c"].p_value <= 1 / (1 + PLAN.permutations) + 1e-12
    assert unfair["c"].flagged
    assert "ROC AUC" in unfair["c"].reasons[0]
    assert not unfair["a"].flagged
    assert not unfair["b"].flagged
    assert report.flagged == [f"cohort=c: {'; '.join(unfair['c'].reasons)}"]


def test_a_higher_false_positive_rate_is_flagged_with_its_reason(schema: FeatureSchema) -> None:
    target, scores, groups = _holdout(2000, seed=8)
    # Group b's non-completers look like completers to the model: its ranking stays, its FPR jumps.
    lifted = (groups == "b") & (target == 0)
    scores = np.where(lifted, np.minimum(scores + 0.25, 1.0), scores)
    b = _by_value(_report(schema, target, scores, groups))["b"]
    assert b.flagged
    assert any(reason.startswith("false positive rate") for reason in b.reasons), b.reasons


def test_a_small_or_one_class_group_gets_nulls_with_notes_never_nan(schema: FeatureSchema) -> None:
    target, scores, groups = _holdout(600, seed=9, worse="c")
    groups[:5] = "tiny"
    target[:5] = 1
    report = _report(schema, target, scores, groups)
    tiny = _by_value(report)["tiny"]
    assert tiny.size == 5
    assert tiny.roc_auc is None
    assert tiny.fpr is None
    assert tiny.abroca is None
    assert tiny.p_value is None
    assert tiny.fnr is not None
    assert any("only completers" in note for note in tiny.notes)
    assert any("never flagged" in note for note in tiny.notes)
    assert "NaN" not in report.model_dump_json()


def test_permutation_p_values_are_seeded(schema: FeatureSchema) -> None:
    holdout = _holdout(800, seed=10, worse="b")
    assert _report(schema, *holdout) == _report(schema, *holdout)


def test_no_groups_declared_means_no_report(schema: FeatureSchema) -> None:
    target, scores, _ = _holdout(100, seed=1)
    plain = _schema(schema)
    assert evaluate_fairness(plain, None, (), target, scores, threshold=0.5, plan=PLAN, random_state=1) is None


def test_a_group_column_absent_from_the_file_is_a_note(schema: FeatureSchema) -> None:
    target, scores, _ = _holdout(100, seed=1)
    declared = _schema(schema, Group(name="gender", column="Gender"))
    absent = ("gender: column 'Gender' is not in the training file",)
    report = evaluate_fairness(declared, None, absent, target, scores, threshold=0.5, plan=PLAN, random_state=1)
    assert report is not None
    assert report.columns == []
    assert report.flagged == []
    assert report.notes == ["gender: column 'Gender' is not in the training file: not reported"]


def test_permutations_stop_early_only_once_no_flag_can_change(schema: FeatureSchema) -> None:
    plan = FairnessPlan(permutations=400)
    fair = _report(schema, *_holdout(2000, seed=6), plan=plan)
    assert fair.columns[0].permutations < plan.permutations
    unfair = _report(schema, *_holdout(2000, seed=6, worse="c"), plan=plan)
    assert unfair.columns[0].permutations == plan.permutations
    c = _by_value(unfair)["c"]
    assert c.p_value == pytest.approx(1 / (1 + plan.permutations))
