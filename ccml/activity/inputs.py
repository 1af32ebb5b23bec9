"""Settings and locations turned into a log's inputs: the one place the CLI and the Lambda build them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ccml.activity.engines import Engine, build_engine
from ccml.activity.source import ActivityDataSource, LogInputs
from ccml.core.activity import ActivitySchema, load_activity_schema
from ccml.core.components import build_data_source
from ccml.core.settings import Settings


def activity_schema(settings: Settings, path: Path | None = None) -> ActivitySchema:
    """The activity schema ``path`` names, else the configured schema file, else the built-in (synthetic) one."""
    return load_activity_schema(path or settings.schema_file)


def log_inputs(
    settings: Settings,
    logs: str,
    *,
    labels: str | None = None,
    calendar: str | None = None,
    enrollments: str | None = None,
) -> LogInputs:
    """A log's inputs from locations (local paths and globs, or ``s3://`` URIs)."""

    def engine() -> Engine:
        return build_engine(
            settings.log_engine, spark_master=settings.spark_master, memory_limit=settings.duckdb_memory_limit
        )

    return LogInputs(
        logs=logs,
        engine=engine,
        max_bytes=settings.max_log_bytes,
        labels=build_data_source(settings, labels) if labels else None,
        calendar=build_data_source(settings, calendar) if calendar else None,
        enrollments=build_data_source(settings, enrollments) if enrollments else None,
    )


def log_source(
    settings: Settings,
    schema: ActivitySchema,
    logs: str,
    days: Sequence[int],
    *,
    labels: str | None = None,
    calendar: str | None = None,
    enrollments: str | None = None,
) -> ActivityDataSource:
    """The labelled feature table of a log as of ``days``, as a training ``DataSource``."""
    inputs = log_inputs(settings, logs, labels=labels, calendar=calendar, enrollments=enrollments)
    return ActivityDataSource(schema, inputs, days)
