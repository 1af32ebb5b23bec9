"""The evaluation report's figures as PNG bytes (matplotlib's object API on the Agg canvas: no
display, no pyplot state shared between threads)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from ccml.core.artifact import ConfusionMatrix
from ccml.core.decision import ReliabilityCurve
from ccml.models.training.report_inputs import ChampionScores, HorizonPoint, Importance

Scores = np.ndarray[Any, np.dtype[np.float64]]
Labels = np.ndarray[Any, np.dtype[np.int8]]
DPI = 100
CHALLENGER, CHAMPION = "#1f77b4", "#ff7f0e"


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    buffer = io.BytesIO()
    # zlib level 1: a little larger than the default 6, and half the encoding time.
    figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def curves(target: Labels, scores: Scores, champion: ChampionScores | None) -> bytes:
    """ROC and precision-recall curves of the challenger and, on the same rows, the champion."""
    figure = Figure(figsize=(10, 4.2))
    roc_axes, pr_axes = figure.subplots(1, 2)
    runs = [("this version", scores, CHALLENGER)]
    if champion is not None:
        runs.append((f"champion {champion.version}", champion.scores, CHAMPION))
    for name, values, colour in runs:
        fpr, tpr, _ = roc_curve(target, values)
        roc_axes.plot(fpr, tpr, color=colour, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        precision, recall, _ = precision_recall_curve(target, values)
        pr_axes.plot(recall, precision, color=colour, label=name)
    roc_axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    roc_axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (holdout)")
    pr_axes.axhline(float(np.mean(target)), color="grey", linestyle=":", label="share completed")
    pr_axes.set(xlabel="recall (completed)", ylabel="precision (completed)", title="Precision-recall curve (holdout)")
    for axes in (roc_axes, pr_axes):
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right" if axes is roc_axes else "lower left", fontsize=8)
    return _png(figure)


def reliability(curve: ReliabilityCurve, scores: Scores) -> bytes:
    """The reliability diagram (mean predicted vs observed per bin) above the histogram of predictions."""
    figure = Figure(figsize=(6, 5.6))
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    filled = [b for b in curve.bins if b.count]
    top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    top.plot([b.mean_predicted for b in filled], [b.observed for b in filled], marker="o", color=CHALLENGER,
             label=f"this version (ECE {curve.expected_calibration_error:.3f})")  # fmt: skip
    top.set(ylabel="observed completion rate", title="Reliability (holdout)", ylim=(0, 1))
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.hist(scores, bins=[b.low for b in curve.bins] + [1.0], color=CHALLENGER, alpha=0.7)
    bottom.set(xlabel="predicted probability of completion", ylabel="students", xlim=(0, 1))
    return _png(figure)


def confusion(matrix: ConfusionMatrix, labels: Sequence[str], threshold: float) -> bytes:
    """The confusion matrix at the decision threshold, counts and row shares in each cell."""
    counts = np.array([[matrix.tn, matrix.fp], [matrix.fn, matrix.tp]])
    figure = Figure(figsize=(4.8, 4.2))
    axes = figure.subplots()
    axes.imshow(counts, cmap="Blues")
    totals = counts.sum(axis=1, keepdims=True).clip(min=1)
    for (row, column), count in np.ndenumerate(counts):
        share = count / totals[row, 0]
        colour = "white" if count > counts.max() / 2 else "black"
        axes.text(column, row, f"{count:,}\n({share:.0%})", ha="center", va="center", color=colour)
    axes.set_xticks([0, 1], [f"predicted {labels[0]}", f"predicted {labels[1]}"], fontsize=8)
    axes.set_yticks([0, 1], [f"actually {labels[0]}", f"actually {labels[1]}"], fontsize=8)
    axes.set_title(f"At threshold {threshold:.3f} (holdout)")
    return _png(figure)


def importance(found: Sequence[Importance]) -> bytes:
    """Permutation importance: ROC AUC lost when each feature is shuffled, with its spread."""
    shown = list(found)[::-1]
    figure = Figure(figsize=(7, 0.45 * len(shown) + 1.4))
    axes = figure.subplots()
    axes.barh([i.feature for i in shown], [i.mean for i in shown], xerr=[i.std for i in shown], color=CHALLENGER)
    axes.axvline(0, color="grey", linewidth=0.8)
    axes.set(xlabel="ROC AUC lost when shuffled", title="Permutation importance (holdout)")
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def horizons(points: Sequence[HorizonPoint]) -> bytes:
    """ROC and PR AUC of the store's horizon models by course day, this version marked."""
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    days = [p.day for p in points]
    axes.plot(days, [p.roc_auc for p in points], marker="o", label="ROC AUC")
    axes.plot(days, [p.pr_auc for p in points], marker="s", label="PR AUC (completed)")
    current = [p for p in points if p.current]
    axes.scatter([p.day for p in current], [p.roc_auc for p in current], s=160, facecolors="none",
                 edgecolors="red", label="this version", zorder=3)  # fmt: skip
    axes.set(xlabel="course day of the prediction", ylabel="holdout score", ylim=(0, 1), title="Horizon models")
    axes.set_xticks(days)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return _png(figure)


Panel = tuple[str, Sequence[str], Mapping[str, Sequence[float | None]]]


def group_bars(panels: Sequence[Panel]) -> bytes:
    """One panel per group column (title, groups, metric -> value per group; None: not computable),
    two panels a row, in one figure: grouped bars, one per metric for each group."""
    columns = min(2, len(panels))
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(6.0 * columns, 3.6 * rows))
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for axes, (title, groups, values) in zip(grid, panels, strict=False):
        width = 0.8 / max(len(values), 1)
        positions = np.arange(len(groups))
        for k, (metric, numbers) in enumerate(values.items()):
            axes.bar(positions + k * width, [np.nan if v is None else v for v in numbers], width, label=metric)
        axes.set_xticks(positions + width * (len(values) - 1) / 2, list(groups), fontsize=8, rotation=20)
        axes.set(title=title, ylim=(0, 1))
        axes.grid(axis="y", alpha=0.3)
        axes.legend(fontsize=7)
    for axes in grid[len(panels) :]:
        axes.set_visible(False)
    return _png(figure)
