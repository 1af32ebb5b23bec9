"""A version's evaluation report: one self-contained HTML page (figures inlined as PNG data URIs,
styles inline, no script, nothing fetched), written when the version is trained.

Sections: summary, metrics (this version, the champion on the same holdout, cross-validation),
ROC and precision-recall curves, calibration, the confusion matrix at the decision threshold,
permutation importance, the training data, and where they apply the horizon models and the
fairness report. Every text from the manifest is escaped: a schema's names are data, not markup.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any, Final

from ccml.core.artifact import Manifest, Metrics
from ccml.models.training import report_figures as figures
from ccml.models.training.report_inputs import ReportInputs

# Metrics in the table, in order, with how each reads.
_METRICS: Final = (
    ("roc_auc", "ROC AUC", "ranking of completers above non-completers (1 = perfect, 0.5 = chance)"),
    ("pr_auc", "PR AUC", "average precision for 'Completed'"),
    ("brier", "Brier score", "mean squared error of the probabilities (lower is better)"),
    ("accuracy", "accuracy", "share of correct answers at the threshold"),
    ("precision", "precision", "of those answered 'Completed', the share who completed"),
    ("recall", "recall", "of those who completed, the share answered 'Completed'"),
    ("f1", "F1", "harmonic mean of precision and recall"),
    ("threshold", "threshold", "probability at or above which the answer is 'Completed'"),
)
_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222}
body{padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:.6rem 0}.muted{color:#666}.flag{color:#b00020;font-weight:600}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float | int | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i >= numeric_from else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _summary(manifest: Manifest) -> str:
    decision = manifest.decision
    rule = "fixed (CCML_DECISION_THRESHOLD)" if decision is None or decision.policy == "fixed" else (
        f"{decision.policy} {decision.target:g}, chosen on {decision.chosen_on}"
        + (f"; achieved {decision.achieved:.3f}" if decision.achieved is not None else "")
    )  # fmt: skip
    promotion = manifest.promotion
    rows = [
        ("version", _e(manifest.version or "unsaved")),
        ("created", _e(manifest.created_at.isoformat(timespec="seconds"))),
        ("trainer", _e(f"{manifest.trainer} {manifest.params}")),
        ("calibration", _e(manifest.calibration or "not recorded")),
        ("decision threshold", _e(f"{manifest.evaluation.holdout.threshold:.4f}: {rule}")),
        ("schema", _e(f"{manifest.schema_.get('name', '')} ({manifest.schema_fingerprint[:12]})")),
        ("promotion", _e(promotion.reason if promotion else "not decided yet")),
    ]
    return _table(["", ""], rows, numeric_from=2)


def _metrics(inputs: ReportInputs) -> str:
    holdout, cv, champion = (
        inputs.manifest.evaluation.holdout,
        inputs.manifest.evaluation.cross_validation,
        inputs.champion,
    )
    header = ["metric", "this version (holdout)"]
    if champion is not None:
        header.append(f"champion {champion.version} (same holdout)")
    if cv is not None:
        header.append(f"cross-validation ({cv.folds} folds)")
    header.append("reads as")

    def row(name: str, title: str, meaning: str) -> list[str]:
        cells = [_e(title), _number(getattr(holdout, name))]
        if champion is not None:
            cells.append(_number(getattr(champion.metrics, name)))
        if cv is not None:
            cells.append(f"{_number(cv.mean.get(name))} ± {_number(cv.std.get(name))}" if name in cv.mean else "—")
        return [*cells, f'<span class="muted">{_e(meaning)}</span>']

    rows = [row(*entry) for entry in _METRICS]
    return _table(header, rows) + f"<p>{holdout.n_rows:,} holdout rows, {holdout.positives:,} completed.</p>"


def _data(manifest: Manifest) -> str:
    data = manifest.data
    share = data.positives / data.rows_used if data.rows_used else math.nan
    rows = [
        ("source", _e(", ".join(f"{k}={v}" for k, v in data.source.items()))),
        ("rows read", _number(data.rows_read)),
        ("duplicates dropped", _number(data.duplicates_dropped)),
        ("rows used", _number(data.rows_used)),
        ("class balance", _e(f"{data.positives:,} completed ({share:.1%}), {data.rows_used - data.positives:,} not")),
        ("train / holdout rows", _e(f"{manifest.holdout.train_rows:,} / {manifest.holdout.holdout_rows:,}")),
        ("columns ignored", _e(", ".join(data.columns_ignored) or "none")),
    ]
    features = [f["name"] for f in manifest.schema_.get("features", [])]
    missing = [(_e(name), _number(data.missing_values.get(name, 0))) for name in features]
    return (
        _table(["", ""], rows, numeric_from=2)
        + "<h3>Missing values per feature (rows used)</h3>"
        + _table(["feature", "missing"], missing)
    )


def _fairness(manifest: Manifest) -> str:
    report = manifest.evaluation.fairness
    if report is None:
        return ""
    parts = [
        f"<p>At threshold {report.threshold:.4f}; ABROCA p-values from up to {report.permutations:,} "
        f"permutations of group membership; a group falls behind when its ROC AUC is more than "
        f"{report.auc_gap:g} below the other rows', or its false positive or negative rate more than "
        f"{report.rate_gap:g} above theirs, significantly (family-wise alpha {report.alpha:g} per column), "
        f"with at least {report.min_group_size} rows.</p>"
    ]
    flagged = report.flagged or ["none"]
    parts.append(
        "<p><strong>Flagged:</strong></p><ul>"
        + "".join(f'<li class="{"flag" if report.flagged else "muted"}">{_e(text)}</li>' for text in flagged)
        + "</ul>"
    )
    panels = [
        (
            f"{column.name} ({column.column})",
            [g.value for g in column.groups],
            {
                "ROC AUC": [g.roc_auc for g in column.groups],
                "FPR": [g.fpr for g in column.groups],
                "FNR": [g.fnr for g in column.groups],
            },
        )
        for column in report.columns
    ]
    if panels:
        parts.append(_image(figures.group_bars(panels), "ROC AUC, FPR and FNR per group"))
    header = ["group", "size", "completed", "ROC AUC", "calibration gap", "FPR", "FNR", "ABROCA", "p", "why"]
    for column in report.columns:
        rows = [
            (
                _e(g.value) + (' <span class="flag">flagged</span>' if g.flagged else ""),
                *(_number(v) for v in (g.size, g.positives, g.roc_auc, g.calibration_gap, g.fpr, g.fnr)),
                *(_number(v) for v in (g.abroca, g.p_value)),
                _e("; ".join([*g.reasons, *g.notes])),
            )
            for g in column.groups
        ]
        parts.append(f"<h3>{_e(column.name)}</h3>" + _table(header, rows))
        parts.extend(f'<p class="muted">{_e(note)}</p>' for note in column.notes)
    parts.extend(f'<p class="muted">{_e(note)}</p>' for note in report.notes)
    return _section("fairness", "Fairness", "".join(parts))


def render(inputs: ReportInputs) -> str:
    """The report page of ``inputs`` as HTML text."""
    manifest = inputs.manifest
    labels = [str(label) for label in manifest.schema_["target"].get("labels", ["Not Completed", "Completed"])]
    holdout: Metrics = manifest.evaluation.holdout
    both_classes = 0 < holdout.positives < holdout.n_rows
    parts = [
        f"<h1>Evaluation report: {_e(manifest.version or 'unsaved')}</h1>",
        _section("summary", "Summary", _summary(manifest)),
        _section("metrics", "Metrics", _metrics(inputs)),
    ]
    if both_classes:
        curves = figures.curves(inputs.target, inputs.scores, inputs.champion)
        body = _image(curves, "ROC and precision-recall curves")
        parts.append(_section("curves", "ROC and precision-recall", body))
    if manifest.evaluation.reliability is not None:
        body = _image(figures.reliability(manifest.evaluation.reliability, inputs.scores), "reliability diagram")
        body += f"<p>Brier score {holdout.brier:.4f}; expected calibration error "
        body += f"{manifest.evaluation.reliability.expected_calibration_error:.4f}.</p>"
        parts.append(_section("calibration", "Calibration", body))
    matrix = figures.confusion(holdout.confusion_matrix, labels, holdout.threshold)
    parts.append(_section("confusion", "Confusion matrix", _image(matrix, "confusion matrix at the threshold")))
    if inputs.importance:
        rows = [(_e(i.feature), _number(i.mean), _number(i.std)) for i in inputs.importance]
        body = _image(figures.importance(inputs.importance), "permutation importance")
        parts.append(_section("importance", "Permutation importance", body + _table(["feature", "mean", "std"], rows)))
    parts.append(_section("data", "Training data", _data(manifest)))
    if inputs.horizons:
        points = [(_e(p.day), _e(p.version), _number(p.roc_auc), _number(p.pr_auc)) for p in inputs.horizons]
        body = _image(figures.horizons(inputs.horizons), "scores by horizon")
        table = _table(["day", "version", "ROC AUC", "PR AUC"], points, 2)
        parts.append(_section("horizons", "Horizons", body + table))
    parts.append(_fairness(manifest))
    notes = [(_e(k), _e(v)) for k, v in sorted(manifest.notes.items())]
    if notes:
        parts.append(_section("notes", "Notes", _table(["", ""], notes, numeric_from=2)))
    title = _e(f"ccml report {manifest.version or 'unsaved'}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
