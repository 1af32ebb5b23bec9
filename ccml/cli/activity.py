"""``ccml features``, ``ccml horizons`` and ``ccml score``: early warning from activity logs.

``ccml train --logs`` (in ``ccml.cli.training``) trains a horizon's model from the same inputs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ccml.cli.common import JsonOption, app, data_app, emit, load_settings, user_errors
from ccml.core.errors import ConfigError
from ccml.core.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from ccml.activity.scoring import FactorsText
    from ccml.core.activity import ActivitySchema
    from ccml.core.artifact import ModelArtifact
    from ccml.core.contracts import DataSource
    from ccml.models.training.workflow import RetrainWorkflow

LogsOption = Annotated[str, typer.Option("--logs", help="Log files: a path or glob, local or s3://bucket/prefix*.")]
LabelsOption = Annotated[
    str | None, typer.Option("--labels", help="Labels file (CSV, local or s3://), joined on the entity id.")
]
CalendarOption = Annotated[
    str | None,
    typer.Option("--calendar", help="Course calendar CSV (course, start); default: each course's first active day."),
]
EnrollmentsOption = Annotated[
    str | None,
    typer.Option(
        "--enrollments", help="Enrollment list CSV (entity id, course): those without any event count as never active."
    ),
]
SchemaOption = Annotated[
    Path | None,
    typer.Option("--schema", help="Activity schema file; default CCML_SCHEMA, else the built-in synthetic logs."),
]


def log_training(
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


def parse_days(text: str) -> list[int]:
    """``"7,14,21"`` -> ``[7, 14, 21]``; ``ConfigError`` naming the bad part."""
    try:
        days = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise ConfigError(f"--days must be whole days separated by commas, got {text!r}") from exc
    if not days or days[0] < 1:
        raise ConfigError(f"--days must name course days >= 1, got {text!r}")
    return days


@data_app.command("logs")
@user_errors
def data_logs(
    out: Annotated[Path, typer.Option(help="Directory to write events, labels, calendar and enrollments into.")],
    courses: Annotated[int, typer.Option(min=1, help="Number of courses.")] = 4,
    per_course: Annotated[int, typer.Option("--per-course", min=1, help="Enrollments per course.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 0,
    wide: Annotated[
        bool, typer.Option("--wide", help="One daily file per course (KDD's form) instead of events.csv.")
    ] = False,
) -> None:
    """Write synthetic activity logs (the built-in activity schema's form, shaped like the KDD Cup 2015 logs)."""
    from ccml.activity.synthetic import generate_logs
    from ccml.activity.synthetic_files import write_logs

    paths = write_logs(generate_logs(courses=courses, enrollments_per_course=per_course, seed=seed), out, wide=wide)
    typer.echo(f"wrote {', '.join(p.name for p in paths.values())} to {out}", err=True)


@app.command()
@user_errors
def features(
    day: Annotated[str, typer.Option("--day", help="Cut-off course day(s), e.g. 14 or 7,14,21.")],
    out: Annotated[str, typer.Option("--out", help="Table to write: .csv or .parquet, local or s3://.")],
    logs: Annotated[
        str | None, typer.Option("--logs", help="Log files: a path or glob, local or s3://bucket/prefix*.")
    ] = None,
    aggregates: Annotated[
        Path | None,
        typer.Option(
            "--aggregates", help="Instead of --logs: a CSV of what `ccml sql` ran elsewhere (Athena) returned."
        ),
    ] = None,
    labels: LabelsOption = None,
    calendar: CalendarOption = None,
    enrollments: EnrollmentsOption = None,
    schema: SchemaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the per-enrollment feature table of a log as of a course day (labelled with --labels)."""
    from ccml.activity.inputs import activity_schema, log_inputs, log_source
    from ccml.storage.tables import write_table

    settings = load_settings()
    declared = activity_schema(settings, schema)
    days = parse_days(day)
    if (logs is None) == (aggregates is None):
        raise ConfigError("give --logs (run the aggregation here) or --aggregates (its result from elsewhere)")
    if aggregates is not None:
        table = _from_aggregates(declared, aggregates, days)
    elif labels or declared.labels.source == "log":
        source = log_source(
            settings, declared, str(logs), days, labels=labels, calendar=calendar, enrollments=enrollments
        )
        table = source.load().frame
    else:
        inputs = log_inputs(settings, str(logs), calendar=calendar, enrollments=enrollments)
        table = inputs.aggregate(declared, days)[0].table
    write_table(table, out)
    summary = {"out": out, "rows": len(table), "entities": int(table[declared.entity].nunique()), "days": days}
    emit(summary, as_json, lambda: f"wrote {len(table)} rows ({summary['entities']} entities, days {days}) to {out}")


def _from_aggregates(declared: ActivitySchema, path: Path, days: list[int]) -> pd.DataFrame:
    """The feature table from a CSV of ``features_sql``'s result (rows of other days are left out)."""
    import pandas as pd

    from ccml.activity.features import feature_table
    from ccml.core.errors import DataSourceError

    try:
        frame = pd.read_csv(path, dtype={"entity": str, "course": str}, keep_default_na=True)
    except (OSError, ValueError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from exc
    if "cutoff" not in frame.columns:
        raise DataSourceError(f"{path} is not what `ccml sql` computes: it has no cutoff column")
    return feature_table(declared, frame[frame["cutoff"].isin(days)])


@app.command()
@user_errors
def horizons(
    logs: LogsOption,
    labels: LabelsOption = None,
    days: Annotated[str | None, typer.Option("--days", help="Cut-off days; default: the schema's horizons.")] = None,
    cv: Annotated[int, typer.Option("--cv", min=2, max=20, help="Folds of the cross-validation.")] = 5,
    group_by: Annotated[
        str | None,
        typer.Option("--group-by", help="course: folds hold out whole courses; student: whole students."),
    ] = None,
    trainer: Annotated[str | None, typer.Option(help="Override CCML_TRAINER.")] = None,
    calendar: CalendarOption = None,
    enrollments: EnrollmentsOption = None,
    schema: SchemaOption = None,
    png: Annotated[Path, typer.Option("--png", help="Where to write the plot of the metrics by day.")] = Path(
        "horizons.png"
    ),
    as_json: JsonOption = False,
) -> None:
    """Cross-validate a model at each cut-off day: ROC AUC, PR AUC (at risk), precision among the top 10% at risk."""
    from ccml.activity.horizons import evaluate_horizons, plot_horizons
    from ccml.activity.inputs import activity_schema, log_source
    from ccml.core.components import build_trainer

    if group_by not in (None, "course", "student"):
        raise ConfigError(f"--group-by takes course or student, got {group_by!r}")
    settings = load_settings(trainer=trainer)
    declared = activity_schema(settings, schema)
    chosen = parse_days(days) if days else declared.horizons
    table = (
        log_source(settings, declared, logs, chosen, labels=labels, calendar=calendar, enrollments=enrollments)
        .load()
        .frame
    )
    results = evaluate_horizons(
        declared,
        table,
        build_trainer(settings),
        chosen,
        folds=cv,
        group_by="student" if group_by == "student" else "course" if group_by else None,
        seed=settings.random_state,
        min_rows=settings.min_rows,
    )
    folds = f"{cv}-fold, {f'grouped by {group_by}' if group_by else 'stratified'}"
    plot_horizons(results, png, f"{declared.name}: {settings.trainer}, {folds}")
    document = {
        "horizons": [h.as_dict() for h in results],
        "folds": folds,
        "trainer": settings.trainer,
        "png": str(png),
    }

    def text() -> str:
        lines = [f"{'day':>4} {'rows':>7} {'roc_auc':>13} {'pr_auc':>7} {'top10%':>7}   ({folds}, {settings.trainer})"]
        lines += [
            f"{h.day:>4} {h.rows:>7} {h.roc_auc:>7.4f} ±{h.roc_auc_std:.3f} {h.pr_auc:>7.4f} {h.precision_top10:>7.4f}"
            for h in results
        ]
        return "\n".join([*lines, f"plot: {png}"])

    emit(document, as_json, text)


def _factors_text(artifact: ModelArtifact) -> FactorsText | None:
    """What writes the at-risk list's ``top_factors`` for ``artifact``'s rows (None: it has no explainer)."""
    from ccml.models.serving.explanations import explain_records, factors_text, load_explainer

    explainer = load_explainer(artifact)
    if explainer is None:
        return None

    def text(rows: pd.DataFrame, top: int) -> list[str]:
        values = [{str(name): value for name, value in row.items()} for row in rows.to_dict("records")]
        explained = explain_records(explainer, rows, top, values)
        return [factors_text(e) for e in explained]

    return text


@app.command()
@user_errors
def score(
    logs: LogsOption,
    out: Annotated[str, typer.Option("--out", help="At-risk list to write: .csv or .parquet, local or s3://.")],
    day: Annotated[
        int | None,
        typer.Option("--day", min=1, help="Score every course at this day; default: each one's current day."),
    ] = None,
    calendar: CalendarOption = None,
    enrollments: EnrollmentsOption = None,
    schema: SchemaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rank every enrollment of every course in the log by risk, with the right horizon's champion."""
    from ccml.activity.inputs import activity_schema, log_inputs
    from ccml.activity.scoring import HorizonModel, horizon_of, rank_at_risk
    from ccml.core.components import build_model_store, build_predictor
    from ccml.storage.tables import write_table

    settings = load_settings()
    declared = activity_schema(settings, schema)
    store = build_model_store(settings)
    models = {}
    for alias in store.aliases():
        horizon = horizon_of(alias)
        if horizon is not None:
            artifact = store.load(alias)
            models[horizon] = HorizonModel(horizon, build_predictor(settings, artifact), _factors_text(artifact))
    if not models:
        raise ConfigError("no horizon model in the store (aliases day-N): run ccml train --logs ... --day N first")
    table = (
        log_inputs(settings, logs, calendar=calendar, enrollments=enrollments)
        .aggregate(declared, [day] if day else None)[0]
        .table
    )
    ranked = rank_at_risk(declared, table, models)
    write_table(ranked, out)
    courses = ranked.groupby("course")["day"].first().to_dict() if len(ranked) else {}
    summary = {"out": out, "rows": len(ranked), "courses": courses, "horizons": sorted(models)}

    def text() -> str:
        top = ranked[ranked["risk_rank"] <= 3]
        lines = [f"wrote {len(ranked)} enrollments of {len(courses)} courses to {out}; most at risk:"]
        for _, row in top.iterrows():
            where = f"{row['course']:>8} day {row['day']:>3}  #{row['risk_rank']}"
            lines.append(f"  {where}  {row[declared.entity]}  p(completed)={row['completion_probability']:.3f}")
        return "\n".join(lines)

    emit(summary, as_json, text)
