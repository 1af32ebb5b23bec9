"""``ccml models ...``: versions, aliases, history and garbage in the configured store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ccml.cli.common import JsonOption, emit, load_settings, models_app, user_errors
from ccml.core.contracts import CHAMPION
from ccml.core.fairness_report import FairnessReport


# -- models ------------------------------------------------------------------------------
def _version_document(version: Any) -> dict[str, Any]:
    manifest = version.manifest
    return {
        "version": version.id,
        "aliases": list(version.aliases),
        "created_at": manifest.created_at.isoformat(),
        "trainer": manifest.trainer,
        "metrics": manifest.evaluation.holdout.model_dump(mode="json"),
        "promotion": manifest.promotion.model_dump(mode="json") if manifest.promotion else None,
    }


@models_app.command("list")
@user_errors
def models_list(as_json: JsonOption = False) -> None:
    """Every version, oldest first, with aliases and holdout metrics."""
    from ccml.core.components import build_model_store

    versions = [_version_document(v) for v in build_model_store(load_settings()).versions()]

    def text() -> str:
        if not versions:
            return "no model versions yet"
        rows = [f"{'VERSION':<25} {'ALIASES':<12} {'TRAINER':<24} {'ROC_AUC':>7}  CREATED"]
        for v in versions:
            aliases = ",".join(v["aliases"]) or "-"
            auc = v["metrics"]["roc_auc"]
            rows.append(f"{v['version']:<25} {aliases:<12} {v['trainer']:<24} {auc:>7.4f}  {v['created_at']}")
        return "\n".join(rows)

    emit(versions, as_json, text)


@models_app.command("show")
@user_errors
def models_show(ref: Annotated[str, typer.Argument(help="A version id or an alias.")] = CHAMPION) -> None:
    """A version's full manifest (JSON)."""
    from ccml.core.components import build_model_store

    store = build_model_store(load_settings())
    emit(store.manifest(store.resolve(ref)).document(), True, str)


@models_app.command("report")
@user_errors
def models_report(
    ref: Annotated[str, typer.Argument(help="A version id or an alias.")] = CHAMPION,
    out: Annotated[Path, typer.Option(help="Directory to write <version>.html into.")] = Path("."),
) -> None:
    """Write a version's evaluation report (one self-contained HTML page, made when it was trained)."""
    from ccml.core.components import build_model_store
    from ccml.core.errors import ModelNotFoundError
    from ccml.core.model_files import REPORT_FILE

    artifact = build_model_store(load_settings()).load(ref)  # every file checked against the manifest
    page = artifact.files.get(REPORT_FILE)
    if page is None:
        reason = artifact.manifest.notes.get("report", "it was trained before ccml wrote reports")
        raise ModelNotFoundError(f"model {artifact.version} has no evaluation report ({reason}); retrain it")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{artifact.version}.html"
    path.write_bytes(page)
    typer.echo(str(path))


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def fairness_table(report: FairnessReport) -> str:
    """The fairness report as text: one row per group, flagged groups marked, then the flags and notes."""
    lines = [
        f"{'GROUP':<24} {'SIZE':>5} {'POS':>5} {'ROC_AUC':>7} {'CAL_GAP':>7} {'FPR':>6} {'FNR':>6} {'ABROCA':>6} "
        f"{'P':>5} {'P_FPR':>5} P_FNR"
    ]
    if not report.columns:
        lines = ["no group column was in the training file"]
    for column in report.columns:
        for g in column.groups:
            label = f"{column.name}={g.value}"
            lines.append(
                f"{label[:24]:<24} {g.size:>5} {g.positives:>5} {_number(g.roc_auc):>7} {g.calibration_gap:>+7.3f} "
                f"{_number(g.fpr):>6} {_number(g.fnr):>6} {_number(g.abroca):>6} "
                f"{_number(g.p_value):>5} {_number(g.fpr_p_value):>5} {_number(g.fnr_p_value):>5}"
                + ("  FLAGGED" if g.flagged else "")
            )
    lines.append(f"threshold {report.threshold:g}, {report.permutations} permutations, alpha {report.alpha:g}")
    lines += [f"flagged: {flag}" for flag in report.flagged] or ["flagged: none"]
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


@models_app.command("fairness")
@user_errors
def models_fairness(
    ref: Annotated[str, typer.Argument(help="A version id or an alias.")] = CHAMPION, as_json: JsonOption = False
) -> None:
    """A version's fairness report: per group, size, ROC AUC, calibration gap, FPR, FNR, ABROCA, p-value."""
    from ccml.core.components import build_model_store

    store = build_model_store(load_settings())
    version = store.resolve(ref)
    report = store.manifest(version).evaluation.fairness
    if report is None:
        emit(None, as_json, lambda: f"{version}: no fairness report (its schema declares no [[groups]])")
        return
    emit(report.model_dump(mode="json"), as_json, lambda: fairness_table(report))


@models_app.command("promote")
@user_errors
def models_promote(
    version: Annotated[str, typer.Argument(help="The version id to make champion.")],
    alias: Annotated[str, typer.Option(help="Alias to move.")] = CHAMPION,
    reason: Annotated[str, typer.Option(help="Why (recorded in the store's history).")] = "promoted by hand",
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a version without the gate: an explicit human decision, recorded."""
    from ccml.core.components import build_model_store

    record = build_model_store(load_settings()).promote(version, alias, reason=reason, forced=True)
    previous = record.previous[-1] if record.previous else None
    document = {"alias": alias, "version": record.version, "previous": previous, "forced": True}
    emit(document, as_json, lambda: f"{alias} -> {record.version} (was {previous})")


@models_app.command("rollback")
@user_errors
def models_rollback(
    alias: Annotated[str, typer.Option(help="Alias to move back.")] = CHAMPION, as_json: JsonOption = False
) -> None:
    """Point an alias back at the version it pointed to before."""
    from ccml.core.components import build_model_store

    store = build_model_store(load_settings())
    before = store.resolve(alias)
    record = store.rollback(alias, reason=f"rollback from {before}")
    forward = f"ccml models promote {before}" + ("" if alias == CHAMPION else f" --alias {alias}")
    document = {"alias": alias, "version": record.version, "rolled_back_from": before, "forward_again": forward}
    emit(
        document,
        as_json,
        lambda: f"{alias} now points at {record.version} (rolled back from {before}).\nTo go forward again: {forward}",
    )


@models_app.command("gc")
@user_errors
def models_gc(
    older_than_s: Annotated[
        float, typer.Option("--older-than-s", min=0, help="Only leftovers at least this old (a save may be running).")
    ] = 3600.0,
    as_json: JsonOption = False,
) -> None:
    """Remove what interrupted saves left: files of versions without a manifest, temporary files."""
    from ccml.core.components import build_model_store

    removed = build_model_store(load_settings()).collect_garbage(older_than_s)
    emit({"removed": removed}, as_json, lambda: "\n".join(removed) or "nothing to remove")


@models_app.command("history")
@user_errors
def models_history(as_json: JsonOption = False) -> None:
    """Every alias move: promotions, forced promotions and rollbacks."""
    from ccml.core.components import build_model_store

    events = [
        {
            "at": e.at.isoformat(),
            "action": e.action,
            "alias": e.alias,
            "version": e.version,
            "previous": e.previous,
            "reason": e.reason,
        }
        for e in build_model_store(load_settings()).history()
    ]
    emit(
        events,
        as_json,
        lambda: (
            "\n".join(
                f"{e['at']} {e['action']:<14} {e['alias']} {e['previous']} -> {e['version']}  {e['reason']}"
                for e in events
            )
            or "no history"
        ),
    )
