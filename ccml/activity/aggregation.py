"""Run the aggregation on an engine: log files in, every problem reported, the feature table out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import structlog

from ccml.activity.engines import Engine
from ccml.activity.features import feature_table
from ccml.activity.sql import events_sql, features_sql, problems_sql, progress_sql
from ccml.core.activity import ActivitySchema
from ccml.core.errors import DataValidationError, ValidationIssue

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Aggregation:
    """The feature table of a log at one or more cut-off days, and how long each step took."""

    table: pd.DataFrame
    entities: int
    seconds: dict[str, float] = field(default_factory=dict)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """``DataValidationError`` naming each of ``columns`` that ``frame`` (a ``what`` file) lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError([ValidationIssue(c, f"required {what} column is missing") for c in missing])


def calendar_frame(schema: ActivitySchema, calendar: pd.DataFrame) -> pd.DataFrame:
    """A course calendar as ``course, start`` (dates); ``DataValidationError`` naming what is wrong."""
    declared = schema.calendar
    require_columns(calendar, (declared.course, declared.start), "calendar")
    starts = pd.to_datetime(calendar[declared.start], errors="coerce")
    bad = starts.isna()
    if bad.any():
        rows = tuple(int(i) + 1 for i in calendar.index[bad.to_numpy()][:5])
        raise DataValidationError([ValidationIssue(declared.start, "not a date", int(bad.sum()), rows)])
    return pd.DataFrame({"course": calendar[declared.course].astype(str).str.strip(), "start": starts.dt.date})


def enrollments_frame(schema: ActivitySchema, enrollments: pd.DataFrame) -> pd.DataFrame:
    """An enrollment list as ``entity, course`` (text); ``DataValidationError`` naming what is wrong."""
    student = schema.logs.student_column
    require_columns(
        enrollments, (schema.entity, schema.calendar.course, *([student] if student else [])), "enrollments"
    )
    entity = enrollments[schema.entity].astype("string").str.strip()
    course = enrollments[schema.calendar.course].astype("string").str.strip()
    blank = entity.isna() | (entity == "") | course.isna() | (course == "")
    if blank.any():
        rows = tuple(int(i) + 1 for i in enrollments.index[blank.to_numpy()][:5])
        raise DataValidationError(
            [ValidationIssue(schema.entity, "blank entity or course in the enrollments", int(blank.sum()), rows)]
        )
    frame = pd.DataFrame({"entity": entity.astype(str), "course": course.astype(str)})
    if student:  # an enrollment without events has its student only here
        frame["student"] = enrollments[student].astype("string").str.strip().astype(str).to_numpy()
    return frame.drop_duplicates()


def missing_columns(engine: Engine, schema: ActivitySchema) -> list[ValidationIssue]:
    """The declared columns the log's files do not have."""
    logs = schema.logs
    declared = [logs.entity, logs.timestamp, logs.course_column, logs.student_column]
    declared += logs.events if logs.format == "wide" else [logs.event_column, logs.count_column]
    declared += [schema.labels.column] if schema.labels.source == "log" else []
    found = set(engine.query("SELECT * FROM ccml_logs LIMIT 0").columns)
    return [ValidationIssue(c, "declared column is missing from the log") for c in declared if c and c not in found]


def problems(engine: Engine, schema: ActivitySchema) -> list[ValidationIssue]:
    """Every problem of the materialized events, one issue per kind."""
    found = engine.query(problems_sql(schema, engine.dialect))
    issues = []
    for problem, count, example in zip(found["problem"], found["n"], found["example"], strict=True):
        if int(count) > 0:
            shown = f" (e.g. {str(example)[:40]})" if isinstance(example, str) else ""
            issues.append(ValidationIssue("(log)", f"{problem}{shown}", int(count)))
    return issues


def aggregate(
    engine: Engine,
    schema: ActivitySchema,
    paths: Sequence[Path],
    days: Sequence[int] | None,
    *,
    calendar: pd.DataFrame | None = None,
    enrollments: pd.DataFrame | None = None,
) -> Aggregation:
    """The feature table of the log in ``paths`` at each of ``days``; each course at its current day when None.

    Raises:
        DataValidationError: the log has problems (all of them are listed); nothing is computed from it.
    """
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    engine.register_logs(paths)
    absent = missing_columns(engine, schema)
    if absent:
        raise DataValidationError(absent)
    if calendar is not None:
        engine.register_frame("ccml_calendar", calendar_frame(schema, calendar))
    if enrollments is not None:
        engine.register_frame("ccml_enrollments", enrollments_frame(schema, enrollments))
    engine.materialize("ccml_events", events_sql(schema, engine.dialect))
    seconds["read"] = round(time.perf_counter() - started, 3)
    issues = problems(engine, schema)
    if issues:
        raise DataValidationError(issues)
    started = time.perf_counter()
    current: dict[str, int] | None = None
    if days is None:
        progress = engine.query(progress_sql(schema, engine.dialect, calendar=calendar is not None))
        current = {str(c): int(d) for c, d in zip(progress["course"], progress["current_day"], strict=True)}
        days = sorted(set(current.values())) or [schema.logs.course_days]
    aggregates = engine.query(
        features_sql(
            schema, engine.dialect, list(days), calendar=calendar is not None, enrollments=enrollments is not None
        )
    )
    seconds["aggregate"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    table = feature_table(schema, aggregates)
    if current is not None:  # each course at its own day only
        table = table[table["day"] == table["course"].map(current)].reset_index(drop=True)
    seconds["features"] = round(time.perf_counter() - started, 3)
    entities = int(table[schema.entity].nunique())
    log.info(
        "log_aggregated",
        engine=engine.name,
        files=len(paths),
        entities=entities,
        days=sorted(set(table["day"].tolist())),
        **seconds,
    )
    return Aggregation(table, entities, seconds)
