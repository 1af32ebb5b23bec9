"""Early-warning horizons: how well a model predicts at each cut-off day of a course, cross-validated.

One model per horizon (each fitted on the table as of its day), measured the way a tutor uses
it: ROC AUC, the average precision of the at-risk class (``pr_auc``) and the share of real
dropouts among the 10% rated most at risk (``precision_top10``). Folds are stratified, or grouped
by course (train on some courses, test on others) so the figure says how the model does on a
course it has never seen, or by student (a student's enrollments on one side), so that a student
in several courses does not vouch for the model on their own other enrollment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import structlog
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ccml.core.activity import COURSE_COLUMN, STUDENT_COLUMN, ActivitySchema
from ccml.core.contracts import Trainer
from ccml.core.errors import ConfigError
from ccml.core.types import Dataset
from ccml.models.training.validation import validate

log = structlog.get_logger(__name__)

GroupBy = Literal["course", "student"] | None
TOP_SHARE = 0.10


def precision_at_top(at_risk: np.ndarray[Any, Any], risk: np.ndarray[Any, Any], share: float = TOP_SHARE) -> float:
    """Share of real at-risk students among the ``share`` of students rated most at risk."""
    flagged = max(1, round(len(risk) * share))
    order = np.argsort(-risk, kind="stable")[:flagged]
    return float(np.mean(at_risk[order]))


@dataclass(frozen=True)
class Horizon:
    """The cross-validated figures of one cut-off day."""

    day: int
    rows: int
    completed_share: float
    roc_auc: float
    roc_auc_std: float
    pr_auc: float
    precision_top10: float

    def as_dict(self) -> dict[str, float | int]:
        """A JSON-ready row."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def _folds(target: np.ndarray[Any, Any], groups: np.ndarray[Any, Any] | None, k: int, seed: int) -> list[Any]:
    if groups is None:
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(target, target))
    return list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(target, target, groups))


def evaluate_day(
    fit: Callable[[pd.DataFrame, np.ndarray[Any, Any]], Any],
    features: pd.DataFrame,
    target: np.ndarray[Any, Any],
    groups: np.ndarray[Any, Any] | None,
    *,
    day: int,
    folds: int,
    seed: int,
) -> Horizon:
    """Cross-validate ``fit`` on one day's table."""
    aucs, prs, tops = [], [], []
    for train, test in _folds(target, groups, folds, seed):
        model = fit(features.iloc[train].reset_index(drop=True), target[train])
        completion = np.asarray(model.predict_proba(features.iloc[test].reset_index(drop=True)), dtype=np.float64)
        at_risk = 1 - target[test]
        aucs.append(roc_auc_score(target[test], completion))
        prs.append(average_precision_score(at_risk, 1 - completion))
        tops.append(precision_at_top(at_risk, 1 - completion))
    return Horizon(
        day=day,
        rows=len(target),
        completed_share=float(np.mean(target)),
        roc_auc=float(np.mean(aucs)),
        roc_auc_std=float(np.std(aucs)),
        pr_auc=float(np.mean(prs)),
        precision_top10=float(np.mean(tops)),
    )


def evaluate_horizons(
    schema: ActivitySchema,
    table: pd.DataFrame,
    trainer: Trainer,
    days: Sequence[int],
    *,
    folds: int = 5,
    group_by: GroupBy = None,
    seed: int = 42,
    min_rows: int = 50,
) -> list[Horizon]:
    """The figures of every day of ``days`` on a labelled feature table that holds those days."""
    feature_schema = schema.feature_schema()
    results = []
    for day in days:
        rows = table[table["day"] == day].reset_index(drop=True)
        dataset = Dataset(frame=rows, fingerprint="", source={"backend": "activity"}, identity=f"day {day}")
        validated = validate(dataset, feature_schema, min_rows=min_rows)
        groups = None
        if group_by == "course":
            groups = rows[COURSE_COLUMN].to_numpy()
        elif group_by == "student":
            if not schema.logs.student_column:
                raise ConfigError("grouping by student needs [logs] student_column in the activity schema")
            groups = rows[STUDENT_COLUMN].to_numpy()
        horizon = evaluate_day(
            lambda f, t: trainer.fit(f, t, feature_schema),
            validated.features,
            validated.target,
            groups,
            day=day,
            folds=folds,
            seed=seed,
        )
        log.info("horizon_evaluated", **horizon.as_dict(), group_by=group_by or "stratified")
        results.append(horizon)
    return results


def plot_horizons(horizons: Sequence[Horizon], path: Path, title: str) -> Path:
    """A PNG of the metrics by day (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = [h.day for h in horizons]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, label in (
        ("roc_auc", "ROC AUC"),
        ("pr_auc", "PR AUC (at risk)"),
        ("precision_top10", "precision, top 10%"),
    ):
        axes.plot(days, [getattr(h, name) for h in horizons], marker="o", label=label)
    axes.fill_between(
        days,
        [h.roc_auc - h.roc_auc_std for h in horizons],
        [h.roc_auc + h.roc_auc_std for h in horizons],
        alpha=0.15,
    )
    axes.set_xlabel("course day of the prediction")
    axes.set_ylabel("cross-validated score")
    axes.set_ylim(0, 1)
    axes.set_xticks(days)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
