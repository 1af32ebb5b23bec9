"""``ccml sql``: the activity-log aggregation as SQL for another engine (Athena, Spark SQL, DuckDB).

What runs there ends in a CSV of per-entity aggregates; ``ccml features --aggregates`` finishes it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ccml.cli.activity import SchemaOption, parse_days
from ccml.cli.common import app, load_settings, user_errors
from ccml.core.errors import ConfigError


@app.command()
@user_errors
def sql(
    day: Annotated[str, typer.Option("--day", help="Cut-off course day(s), e.g. 14 or 7,14,21.")],
    dialect: Annotated[str, typer.Option(help="duckdb | spark | athena")] = "athena",
    calendar: Annotated[bool, typer.Option("--calendar", help="Courses start on a ccml_calendar table's day.")] = False,
    enrollments: Annotated[
        bool,
        typer.Option(
            "--enrollments",
            help="Enrollments of a table ccml_enrollments(entity, course[, student]) count as never active.",
        ),
    ] = False,
    schema: SchemaOption = None,
) -> None:
    """Print the aggregation's SQL for another engine: run it there over a relation ccml_logs."""
    from ccml.activity.inputs import activity_schema
    from ccml.activity.sql import DIALECTS, events_sql, features_sql, problems_sql

    if dialect not in DIALECTS:
        raise ConfigError(f"--dialect takes {' | '.join(DIALECTS)}, got {dialect!r}")
    declared = activity_schema(load_settings(), schema)
    chosen = DIALECTS[dialect]
    create = "CACHE TABLE ccml_events AS" if dialect == "spark" else "CREATE TABLE ccml_events AS"
    typer.echo(f"-- 1. the rows that carry events (or a problem)\n{create}\n{events_sql(declared, chosen)};\n")
    typer.echo(f"-- 2. every problem: each row with n > 0 must be fixed first\n{problems_sql(declared, chosen)};\n")
    statement = features_sql(declared, chosen, parse_days(day), calendar=calendar, enrollments=enrollments)
    typer.echo(f"-- 3. per entity and day: save as CSV, then ccml features --aggregates FILE\n{statement};")
