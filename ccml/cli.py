"""The ``ccml`` command line: a thin composition of settings-built components.

With ``--json`` a command prints exactly one JSON document on stdout; logs and progress go
to stderr. A user error exits 1 with a message on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from ccml.core.contracts import CHAMPION
from ccml.core.errors import CcmlError, ConfigError, DataSourceError, EventError, InvalidInputError
from ccml.core.jsonable import finite
from ccml.core.logging import configure_logging
from ccml.core.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="ccml",
    help="Train, version, promote and serve course-completion models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Training data.", no_args_is_help=True)
models_app = typer.Typer(help="Model versions and aliases in the configured store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")

JsonOption = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]


def _settings(**overrides: Any) -> Settings:
    settings = Settings.load(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _emit(document: Any, as_json: bool, text: Callable[[], str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(finite(document), indent=2, default=str, allow_nan=False) + "\n")
    else:
        sys.stdout.write(text() + "\n")


def _user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn ccml's errors into a message and exit status 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CcmlError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


# -- data --------------------------------------------------------------------------------
@data_app.command("sample")
@_user_errors
def data_sample(
    out: Annotated[Path, typer.Option(help="CSV file to write.")],
    rows: Annotated[int, typer.Option(min=1, help="Number of students.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same file.")] = 0,
) -> None:
    """Write synthetic training data in the active schema's columns."""
    from ccml.models.training.synthetic import generate

    settings = _settings()
    frame = generate(settings.feature_schema(), rows, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    typer.echo(f"wrote {rows} rows to {out}", err=True)


# -- training ----------------------------------------------------------------------------
@app.command()
@_user_errors
def train(
    data: Annotated[str, typer.Option(help="CSV to train on: a path, or s3://bucket/key.")],
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if the gate says no (a human decision).")
    ] = False,
    trainer: Annotated[str | None, typer.Option(help="Override CCML_TRAINER.")] = None,
    cv: Annotated[int | None, typer.Option(help="k-fold cross-validation (overrides CCML_CV_FOLDS).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate, train, evaluate, save a new version, and promote it if it passes the gate."""
    from ccml.core.components import build_data_source, build_model_store, build_trainer
    from ccml.models.training.workflow import RetrainWorkflow

    settings = _settings(trainer=trainer, cv_folds=cv)
    store = build_model_store(settings)
    workflow = RetrainWorkflow.from_settings(settings, store, build_trainer(settings))
    outcome = workflow.run(build_data_source(settings, data), force=force)
    summary = outcome.summary()

    def text() -> str:
        metrics = summary["metrics"]
        lines = [
            f"version   {outcome.version}",
            f"promoted  {outcome.promoted} ({outcome.reason})",
            f"holdout   roc_auc={metrics['roc_auc']:.4f} pr_auc={metrics['pr_auc']:.4f} "
            f"f1={metrics['f1']:.4f} accuracy={metrics['accuracy']:.4f} brier={metrics['brier']:.4f}",
        ]
        if "cross_validation" in metrics:
            mean, std = metrics["cross_validation"]["mean"], metrics["cross_validation"]["std"]
            folds = metrics["cross_validation"]["folds"]
            lines.append(f"cv        roc_auc={mean['roc_auc']:.4f} ± {std['roc_auc']:.4f} ({folds} folds)")
        lines.append(f"rows      {summary['rows_used']} used, {summary['duplicates_dropped']} duplicates dropped")
        return "\n".join(lines)

    _emit(summary, as_json, text)


@app.command()
@_user_errors
def retrain(
    event: Annotated[
        Path, typer.Option(help="An S3 notification or EventBridge event, plain or wrapped in SQS/SNS (JSON file).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Run the Lambda handler's retraining on an event file: the same code path, as a container task."""
    from ccml.models.training.event_retraining import build_event_retrainer

    try:
        document = json.loads(event.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise EventError(f"cannot read event file {event}: {exc}") from exc
    summary = build_event_retrainer(_settings()).handle(document)
    lines = [f"{r['object']}: {r['status']} {r.get('version') or r.get('reason', '')}" for r in summary["results"]]
    lines += [f"ignored {i.get('kind', 'message')} at {i.get('path', '$')}" for i in summary.get("ignored", [])]
    _emit(summary, as_json, lambda: "\n".join(lines))


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
@_user_errors
def models_list(as_json: JsonOption = False) -> None:
    """Every version, oldest first, with aliases and holdout metrics."""
    from ccml.core.components import build_model_store

    versions = [_version_document(v) for v in build_model_store(_settings()).versions()]

    def text() -> str:
        if not versions:
            return "no model versions yet"
        rows = [f"{'VERSION':<25} {'ALIASES':<12} {'TRAINER':<24} {'ROC_AUC':>7}  CREATED"]
        for v in versions:
            aliases = ",".join(v["aliases"]) or "-"
            auc = v["metrics"]["roc_auc"]
            rows.append(f"{v['version']:<25} {aliases:<12} {v['trainer']:<24} {auc:>7.4f}  {v['created_at']}")
        return "\n".join(rows)

    _emit(versions, as_json, text)


@models_app.command("show")
@_user_errors
def models_show(ref: Annotated[str, typer.Argument(help="A version id or an alias.")] = CHAMPION) -> None:
    """A version's full manifest (JSON)."""
    from ccml.core.components import build_model_store

    store = build_model_store(_settings())
    manifest = store.manifest(store.resolve(ref)).model_dump(mode="json", by_alias=True)
    _emit(manifest, True, str)


@models_app.command("promote")
@_user_errors
def models_promote(
    version: Annotated[str, typer.Argument(help="The version id to make champion.")],
    alias: Annotated[str, typer.Option(help="Alias to move.")] = CHAMPION,
    reason: Annotated[str, typer.Option(help="Why (recorded in the store's history).")] = "promoted by hand",
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a version without the gate: an explicit human decision, recorded."""
    from ccml.core.components import build_model_store

    record = build_model_store(_settings()).promote(version, alias, reason=reason, forced=True)
    previous = record.previous[-1] if record.previous else None
    document = {"alias": alias, "version": record.version, "previous": previous, "forced": True}
    _emit(document, as_json, lambda: f"{alias} -> {record.version} (was {previous})")


@models_app.command("rollback")
@_user_errors
def models_rollback(
    alias: Annotated[str, typer.Option(help="Alias to move back.")] = CHAMPION, as_json: JsonOption = False
) -> None:
    """Point an alias back at the version it pointed to before."""
    from ccml.core.components import build_model_store

    store = build_model_store(_settings())
    before = store.resolve(alias)
    record = store.rollback(alias, reason=f"rollback from {before}")
    document = {"alias": alias, "version": record.version, "rolled_back_from": before}
    _emit(document, as_json, lambda: f"{alias} -> {record.version} (rolled back from {before})")


@models_app.command("gc")
@_user_errors
def models_gc(
    older_than_s: Annotated[
        float, typer.Option("--older-than-s", min=0, help="Only leftovers at least this old (a save may be running).")
    ] = 3600.0,
    as_json: JsonOption = False,
) -> None:
    """Remove what interrupted saves left: files of versions without a manifest, temporary files."""
    from ccml.core.components import build_model_store

    removed = build_model_store(_settings()).collect_garbage(older_than_s)
    _emit({"removed": removed}, as_json, lambda: "\n".join(removed) or "nothing to remove")


@models_app.command("history")
@_user_errors
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
        for e in build_model_store(_settings()).history()
    ]
    _emit(
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


# -- predict -----------------------------------------------------------------------------
def _read_records(source: str, settings: Settings) -> list[Any]:
    from ccml.models.serving.records import records_from_frame

    text: str
    if source == "-":
        text = sys.stdin.read()
    elif source.lstrip().startswith(("{", "[")):
        text = source
    else:
        path = Path(source)
        try:
            if path.suffix.lower() == ".csv":
                import io

                import pandas as pd

                from ccml.storage.csv_text import read_csv_text

                data = path.read_bytes()
                # The training data's rules first (encoding, unique header, no long rows), then
                # pandas' typing of the cells, which the record model expects.
                columns = read_csv_text(data, str(path)).columns
                typed = pd.read_csv(io.BytesIO(data), skipinitialspace=True, header=0, names=list(columns))
                return records_from_frame(typed, settings.feature_schema())
            text = path.read_text("utf-8")
        except (OSError, ValueError) as exc:
            raise DataSourceError(f"cannot read {path}: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"input is not valid JSON: {exc}") from exc
    return document if isinstance(document, list) else [document]


@app.command()
@_user_errors
def predict(
    source: Annotated[str, typer.Argument(help="A JSON object, a JSON list, a .json or .csv file, or - for stdin.")],
    model: Annotated[str, typer.Option(help="Version id or alias to use.")] = CHAMPION,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N records.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Predict completion for one or more students."""
    from ccml.core.components import build_model_store, build_predictor
    from ccml.models.serving.records import validate_records

    settings = _settings()
    raw = _read_records(source, settings)[:limit]
    records = validate_records(raw, settings.feature_schema(), allow_missing=True)
    predictor = build_predictor(settings, build_model_store(settings).load(model))
    results = [
        {"prediction": p.label, "probability": round(p.probability, 6), "model_version": predictor.version}
        for p in predictor.predict(records)
    ]
    _emit(
        results,
        as_json,
        lambda: (
            "\n".join(
                f"{i:>5}  {r['prediction']:<14} p(completed)={r['probability']:.3f}" for i, r in enumerate(results, 1)
            )
            + f"\n(model {predictor.version})"
        ),
    )


# -- serve -----------------------------------------------------------------------------
@app.command()
@_user_errors
def serve(
    host: Annotated[str, typer.Option(envvar="CCML_HOST", help="Interface to listen on (0.0.0.0 in a container).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="CCML_PORT", min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(envvar="CCML_WORKERS", min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the champion over HTTP (Swagger UI at /docs), reloading it when it changes."""
    from ccml.api.server import serve as run_server

    _settings()  # fail fast on bad settings, before uvicorn starts workers
    run_server(host, port, workers)


# -- config ------------------------------------------------------------------------------
@app.command()
@_user_errors
def config(as_json: JsonOption = False) -> None:
    """The effective settings (secrets masked)."""
    values = _settings().masked()
    _emit(values, as_json, lambda: "\n".join(f"CCML_{k.upper():<24} {v}" for k, v in values.items()))


def main() -> None:
    """Run the ``ccml`` command (the console script's entry point)."""
    try:
        app()
    except ConfigError as exc:  # raised while typer builds a command's defaults
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
