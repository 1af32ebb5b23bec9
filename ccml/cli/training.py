"""``ccml data sample``, ``ccml train`` and ``ccml retrain``: making data and models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ccml.cli.common import JsonOption, app, data_app, emit, load_settings, read_settings_file, user_errors
from ccml.cli.progress import for_people, print_table, progress_display
from ccml.core.errors import ConfigError, EventError


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
SettingsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        help="A settings file (TOML, as `ccml tune --out` writes); command-line options override it.",
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show the structured logs instead of the progress display.")
]


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
    settings_file: SettingsFileOption = None,
    verbose: VerboseOption = False,
    as_json: JsonOption = False,
) -> None:
    """Validate, train, evaluate, save a new version, and promote it if it passes the gate."""
    from ccml.cli.activity import log_training
    from ccml.core.components import build_data_source, build_model_store, build_trainer
    from ccml.models.training.workflow import RetrainWorkflow

    from_file = read_settings_file(settings_file) if settings_file else {}
    settings = load_settings(**{**from_file, "trainer": trainer or from_file.get("trainer"), "cv_folds": cv})
    if "trainer_params" in from_file:
        # Exactly the file's parameters: pydantic-settings merges a dict given as a keyword into
        # CCML_TRAINER_PARAMS' instead of replacing it, and tune's winner is a whole set.
        settings = settings.model_copy(update={"trainer_params": from_file["trainer_params"]})
    people = for_people(as_json)
    store = build_model_store(settings)
    workflow = RetrainWorkflow.from_settings(settings, store, build_trainer(settings))
    if (data is None) == (logs is None):
        raise ConfigError("give --data (a table) or --logs (an activity log), not both")
    if logs is not None:
        source, workflow = log_training(settings, workflow, logs, labels, day, (calendar, enrollments), schema)
    else:
        source = build_data_source(settings, str(data))
    with progress_display(people, verbose=verbose, log_level=settings.log_level):
        outcome = workflow.run(source, force=force)
    summary = outcome.summary()
    if day is not None:
        summary["day"] = day
        summary["alias"] = workflow.alias
    if people:
        print_table(f"trained {outcome.version}", _summary_rows(summary, settings.trainer))
        return

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
        if summary["columns_ignored"]:
            lines.append(f"ignored   {', '.join(summary['columns_ignored'])} (not in the schema)")
        lines += [f"fairness  {line}" for line in _fairness_lines(summary)]
        return "\n".join(lines)

    emit(summary, as_json, text)


def _summary_rows(summary: dict[str, Any], trainer: str) -> list[tuple[str, str]]:
    metrics = summary["metrics"]
    rows = [
        ("promoted", f"{'yes' if summary['promoted'] else 'no'}: {summary['reason']}"),
        ("trainer", trainer),
        (
            "holdout",
            f"roc_auc {metrics['roc_auc']:.4f}  pr_auc {metrics['pr_auc']:.4f}  f1 {metrics['f1']:.4f}  "
            f"accuracy {metrics['accuracy']:.4f}  brier {metrics['brier']:.4f}",
        ),
    ]
    if "cross_validation" in metrics:
        cv = metrics["cross_validation"]
        rows.append(("cv", f"roc_auc {cv['mean']['roc_auc']:.4f} ± {cv['std']['roc_auc']:.4f} ({cv['folds']} folds)"))
    rows.append(("rows", f"{summary['rows_used']:,} used, {summary['duplicates_dropped']:,} duplicates dropped"))
    if summary["columns_ignored"]:
        rows.append(("ignored columns", f"{', '.join(summary['columns_ignored'])} (in the file, not in the schema)"))
    rows += [("fairness", line) for line in _fairness_lines(summary)]
    rows.append(("seconds", f"{sum(summary['seconds'].values()):.1f}"))
    return rows


def _fairness_lines(summary: dict[str, Any]) -> list[str]:
    """The groups flagged (or that none was) and what was skipped; nothing when the schema declares no groups."""
    if "fairness_flags" not in summary:
        return []
    if not summary["fairness_groups"]:
        flags = ["no group column in the file"]
    else:
        flags = [f"flagged {flag}" for flag in summary["fairness_flags"]] or ["no group flagged (ccml models fairness)"]
    return flags + [f"skipped {note}" for note in summary["fairness_notes"]]


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
    lines = []
    for r in summary["results"]:
        where = f"{r['object']} day {r['day']}" if "day" in r else r["object"]
        lines.append(f"{where}: {r['status']} {r.get('version') or r.get('reason', '')}")
    lines += [f"ignored {i.get('kind', 'message')} at {i.get('path', '$')}" for i in summary.get("ignored", [])]
    emit(summary, as_json, lambda: "\n".join(lines))
