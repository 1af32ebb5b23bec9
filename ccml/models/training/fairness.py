"""Fairness on the holdout: per group column and group, how the model does for it, and who falls behind.

Every group is compared with the other rows of the holdout (one against the rest): size,
ROC AUC, calibration gap, false positive and false negative rates at the decision threshold,
and ABROCA with permutation-test p-values (``ccml.models.training.abroca``). The flag rule is
``_reasons``; the README's "Fairness report" defines every number.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
import structlog
from sklearn.metrics import roc_auc_score

from ccml.core.fairness_report import FairnessReport, GroupColumnReport, GroupMetrics
from ccml.core.schema import FeatureSchema
from ccml.models.training.abroca import permutation_stats, score_bins
from ccml.models.training.groups import MISSING_GROUP

log = structlog.get_logger(__name__)

Array = np.ndarray[Any, Any]

# A column with more distinct values than this is not a grouping (an id?): skipped with a note.
MAX_GROUP_VALUES: Final = 50
# The flag rules (ROC AUC with ABROCA, false positive rate, false negative rate): see ``_reasons``.
RULES: Final = 3


@dataclass(frozen=True)
class FairnessPlan:
    """Settings of the fairness evaluation (``CCML_FAIRNESS_*``)."""

    permutations: int = 1000
    alpha: float = 0.05
    auc_gap: float = 0.05
    rate_gap: float = 0.05
    min_group_size: int = 30


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _auc(target: Array, scores: Array) -> float | None:
    return float(roc_auc_score(target, scores)) if 0 < target.sum() < len(target) else None


def _gaps(metrics: GroupMetrics, rest: dict[str, float | None], plan: FairnessPlan) -> tuple[bool, bool, bool]:
    """Whether the group is behind the others by more than the settings: ROC AUC, FPR, FNR."""
    auc, other_auc = metrics.roc_auc, rest["roc_auc"]
    fpr, other_fpr = metrics.fpr, rest["fpr"]
    fnr, other_fnr = metrics.fnr, rest["fnr"]
    return (
        auc is not None and other_auc is not None and other_auc - auc > plan.auc_gap,
        fpr is not None and other_fpr is not None and fpr - other_fpr > plan.rate_gap,
        fnr is not None and other_fnr is not None and fnr - other_fnr > plan.rate_gap,
    )


def _reasons(metrics: GroupMetrics, rest: dict[str, float | None], plan: FairnessPlan, alpha: float) -> list[str]:
    """Why a group falls behind: a gap beyond the setting that the permutation test says is not chance."""
    auc_gap, fpr_gap, fnr_gap = _gaps(metrics, rest, plan)
    reasons: list[str] = []
    p = metrics.p_value
    if auc_gap and p is not None and p < alpha:
        reasons.append(
            f"ROC AUC {metrics.roc_auc:.3f} vs {rest['roc_auc']:.3f} for the others "
            f"(ABROCA {metrics.abroca:.3f}, p={p:.3g})"
        )
    for gap, name, label, who in (
        (fpr_gap, "fpr", "false positive rate", "more of its non-completers go unflagged"),
        (fnr_gap, "fnr", "false negative rate", "more of its completers are flagged at risk"),
    ):
        p = getattr(metrics, f"{name}_p_value")
        if gap and p is not None and p < alpha:
            reasons.append(
                f"{label} {getattr(metrics, name):.3f} vs {rest[name]:.3f} for the others (p={p:.3g}): {who}"
            )
    return reasons


def _group_metrics(
    value: str, inside: Array, target: Array, scores: Array, predicted: Array, plan: FairnessPlan
) -> tuple[GroupMetrics, dict[str, float | None]]:
    """A group's numbers without the permutation tests, and the other rows' ROC AUC, FPR and FNR."""
    t, s, hit = target[inside], scores[inside], predicted[inside]
    notes = []
    if t.min() == t.max():
        notes.append(f"only {'completers' if t[0] else 'non-completers'}: no ROC AUC, ABROCA or p-value")
    if inside.all():
        notes.append("no other rows to compare with")
    if inside.sum() < plan.min_group_size:
        notes.append(f"fewer than {plan.min_group_size} rows: reported, never flagged")
    metrics = GroupMetrics(
        value=value,
        size=int(inside.sum()),
        positives=int(t.sum()),
        selection_rate=float(hit.mean()),
        roc_auc=_auc(t, s),
        calibration_gap=float(s.mean() - t.mean()),
        fpr=_rate(int((hit & (t == 0)).sum()), int((t == 0).sum())),
        fnr=_rate(int((~hit & (t == 1)).sum()), int(t.sum())),
        notes=notes,
    )
    others_target, others_hit = target[~inside], predicted[~inside]
    rest = {
        "roc_auc": _auc(others_target, scores[~inside]) if len(others_target) else None,
        "fpr": _rate(int((others_hit & (others_target == 0)).sum()), int((others_target == 0).sum())),
        "fnr": _rate(int((~others_hit & (others_target == 1)).sum()), int(others_target.sum())),
    }
    return metrics, rest


def _column_report(
    name: str,
    column: str,
    groups: pd.Series,
    target: Array,
    scores: Array,
    plan: FairnessPlan,
    threshold: float,
    order: list[str],
    rng: np.random.Generator,
) -> GroupColumnReport:
    values = [v for v in order if v in set(groups)] + sorted(set(groups) - set(order) - {MISSING_GROUP})
    values += [MISSING_GROUP] if MISSING_GROUP in set(groups) else []
    if len(values) > MAX_GROUP_VALUES:
        note = f"{len(values)} distinct values (more than {MAX_GROUP_VALUES}): not a grouping, skipped"
        return GroupColumnReport(name=name, column=column, permutations=0, groups=[], notes=[note])
    codes = pd.Categorical(groups, categories=values).codes.astype(np.int64)
    predicted = scores >= threshold
    sizes = np.bincount(codes, minlength=len(values))
    # Bonferroni over the column's tests (three rules per group that can be flagged): a column of
    # many groups tests each more strictly, so alpha bounds the chance of any false flag in it.
    alpha = plan.alpha / max(1, RULES * int((sizes >= plan.min_group_size).sum()))
    measured = [_group_metrics(v, codes == code, target, scores, predicted, plan) for code, v in enumerate(values)]
    # Only a test whose gap is beyond its setting, in a group large enough, can flag: the others need no precision.
    needed = np.array([_gaps(m, rest, plan) for m, rest in measured], dtype=bool).reshape(len(values), RULES)
    needed &= (sizes >= plan.min_group_size)[:, None]
    bins = score_bins(scores, threshold)
    observed, p, done = permutation_stats(
        codes, target, bins, len(values), plan.permutations, rng, needed=needed, alpha=alpha
    )
    report: list[GroupMetrics] = []
    for code, (metrics, rest) in enumerate(measured):
        tested = metrics.model_copy(
            update={
                "abroca": _finite(observed.abroca[0, code]),
                "p_value": _finite(p.abroca[code]),
                "fpr_p_value": _finite(p.fpr_gap[code]),
                "fnr_p_value": _finite(p.fnr_gap[code]),
            }
        )
        reasons = _reasons(tested, rest, plan, alpha) if sizes[code] >= plan.min_group_size else []
        report.append(tested.model_copy(update={"flagged": bool(reasons), "reasons": reasons}))
    return GroupColumnReport(name=name, column=column, permutations=done, groups=report)


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def evaluate_fairness(
    schema: FeatureSchema,
    groups: pd.DataFrame | None,
    absent: tuple[str, ...],
    target: Array,
    scores: Array,
    *,
    threshold: float,
    plan: FairnessPlan,
    random_state: int,
) -> FairnessReport | None:
    """The fairness report of one holdout, or None when the schema declares no groups."""
    if not schema.groups:
        return None
    started = time.perf_counter()
    rng = np.random.default_rng(random_state)
    columns = []
    for group in schema.groups:
        if groups is None or group.name not in groups.columns:
            continue
        order = [str(c) for c in group.categories or []]
        columns.append(
            _column_report(group.name, group.column, groups[group.name], target, scores, plan, threshold, order, rng)
        )
    flagged = [f"{c.name}={g.value}: {'; '.join(g.reasons)}" for c in columns for g in c.groups if g.flagged]
    notes = [f"{note}: not reported" for note in absent]
    log.info(
        "fairness_evaluated",
        columns=[c.name for c in columns],
        flagged=flagged,
        permutations=[c.permutations for c in columns],
        seconds=round(time.perf_counter() - started, 3),
    )
    return FairnessReport(
        threshold=threshold,
        permutations=plan.permutations,
        alpha=plan.alpha,
        auc_gap=plan.auc_gap,
        rate_gap=plan.rate_gap,
        min_group_size=plan.min_group_size,
        columns=columns,
        flagged=flagged,
        notes=notes,
    )
