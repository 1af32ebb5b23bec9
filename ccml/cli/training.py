"""``ccml data sample``, ``ccml train`` and ``ccml retrain``: making data and models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ccml.cli.common import JsonOption, app, data_app, emit, load_settings, user_errors
from ccml.core.errors import ConfigError, EventError
from ccml.core.settings import Settings

if TYPE_CHECKING:
    from ccml.core.contracts import DataSource
    from ccml.models.training.workflow import RetrainWorkflow


# -- data --------------------------------------------------------------------------------
@data_app.command("sample")
@user_errors
def data_sample(
    out: Annotated[Path, typer.Option(help="CSV file to write.")],
    rows: Annotated[int, typer.Option(min=1, help="Number of students.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same file.")] = 0,
) -> None:
    """Write synthetic training data in the active schema's columns."""
    from ccml.models.training.synthetic import generate

    settings = load_settings()
    frame = generate(settings.feature_schema(), rows, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    typer.echo(f"wrote {rows} rows to {out}", err=True)


# -- training ----------------------------------------------------------------------------
def _log_training(
    settings: Settings,
    workflow: RetrainWorkflow,
    logs: str,
    labels: str | None,
    day: int | None,
    companions: tuple[str | None, str | None],
    schema: Path | None,
) -> tuple[DataSource, RetrainWorkflow]:
    """The source and workflow of a horizon's model: the log's table as of ``day``, gated against ``day-<day>``."""
    from ccml.activity.inputs import activity_schema, log_source
    from ccml.activity.scoring import horizon_alias

    if day is None:
        raise ConfigError("--logs needs --day: the course day the model predicts at")
    declared = activity_schema(settings, schema)
    if day > declared.logs.course_days:
        raise ConfigError(f"--day {day} lies past the course's {declared.logs.course_days} days")
    calendar, enrollments = companions
    source = log_source(settings, declared, logs, [day], labels=labels, calendar=calendar, enrollments=enrollments)
    return source, replace(workflow, schema=declared.feature_schema(), alias=horizon_alias(day))


@app.command()
@user_errors
def train(
    data: Annotated[str | None, typer.Option(help="CSV to train on: a path, or s3://bucket/key.")] = None,
    logs: Annotated[
        str | None, typer.Option(help="Or an activity log (path, glob or s3:// glob): train horizon --day's model.")
    ] = None,
    labels: Annotated[str | None, typer.Option(help="With --logs: the labels file.")] = None,
    day: Annotated[int | None, typer.Option(min=1, help="With --logs: the course day the model predicts at.")] = None,
    calendar: Annotated[str | None, typer.Option(help="With --logs: a course calendar CSV.")] = None,
    enrollments: Annotated[str | None, typer.Option(help="With --logs: the enrollment list CSV.")] = None,
    schema: Annotated[Path | None, typer.Option(help="With --logs: the activity schema file.")] = None,
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

    settings = load_settings(trainer=trainer, cv_folds=cv)
    store = build_model_store(settings)
    workflow = RetrainWorkflow.from_settings(settings, store, build_trainer(settings))
    if (data is None) == (logs is None):
        raise ConfigError("give --data (a table) or --logs (an activity log), not both")
    if logs is not None:
        source, workflow = _log_training(settings, workflow, logs, labels, day, (calendar, enrollments), schema)
    else:
        source = build_data_source(settings, str(data))
    outcome = workflow.run(source, force=force)
    summary = outcome.summary()
    if day is not None:
        summary["day"] = day
        summary["alias"] = workflow.alias

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

    emit(summary, as_json, text)


@app.command()
@user_errors
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
    summary = build_event_retrainer(load_settings()).handle(document)
    lines = [f"{r['object']}: {r['status']} {r.get('version') or r.get('reason', '')}" for r in summary["results"]]
    lines += [f"ignored {i.get('kind', 'message')} at {i.get('path', '$')}" for i in summary.get("ignored", [])]
    emit(summary, as_json, lambda: "\n".join(lines))
