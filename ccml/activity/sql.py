"""The aggregation as SQL, generated from a log declaration, in the dialect of the engine that runs it.

Three statements, run in order over a relation ``ccml_logs`` (the log's columns as read, plus
``ccml_file``, the file each row came from):

1. ``events_sql``: typed rows that carry events (or a problem to report): a wide log's all-zero
   days carry nothing and are dropped here, which keeps what follows small. The engine stores
   the result as ``ccml_events`` (a temporary table, Spark's ``CACHE TABLE``, Athena's ``CREATE
   TABLE AS``).
2. ``problems_sql``: one row per kind of problem, with a count and a few examples.
3. ``features_sql(days)``: one row per entity seen in the log and cut-off day: counts of each event
   type, active days, first and last active day, last week's activity, the later half's events and
   bitmasks of the active days, all from events strictly before the cut-off day.

Only SUM, MIN, MAX, COUNT, CASE, JOIN and GROUP BY, so the same text runs on DuckDB, Spark SQL and
Athena/Trino; ``Dialect`` spells the few functions that differ (quoting, date parsing, date
difference, string literals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ccml.core.activity import LAST_WEEK_DAYS, ActivitySchema

# Days per bitmask column: sums of distinct powers of two stay exact in a DOUBLE up to 2**53.
MASK_DAYS: Final = 52


@dataclass(frozen=True)
class Dialect:
    """How one engine spells what standard SQL leaves open."""

    name: str
    quote_char: str
    string_type: str
    backslash_escapes: bool

    def quote(self, identifier: str) -> str:
        """``identifier`` quoted (``time`` is reserved in some engines)."""
        q = self.quote_char
        return f"{q}{identifier.replace(q, q + q)}{q}"

    def literal(self, text: str) -> str:
        """``text`` as a string literal."""
        if self.backslash_escapes:
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", "''") + "'"

    def to_date(self, expression: str) -> str:
        """The calendar day of a timestamp or date given as text (NULL when unparsable)."""
        if self.name == "spark":
            return f"to_date(try_cast({expression} AS TIMESTAMP))"
        if self.name == "athena":
            return f"CAST(TRY(from_iso8601_timestamp({expression})) AS DATE)"
        return f"CAST(TRY_CAST({expression} AS TIMESTAMP) AS DATE)"

    def day_diff(self, start: str, end: str) -> str:
        """Whole days from ``start`` to ``end`` (both dates)."""
        if self.name == "spark":
            return f"datediff({end}, {start})"
        return f"date_diff('day', {start}, {end})"


DUCKDB: Final = Dialect("duckdb", '"', "VARCHAR", backslash_escapes=False)
SPARK: Final = Dialect("spark", "`", "STRING", backslash_escapes=True)
ATHENA: Final = Dialect("athena", '"', "VARCHAR", backslash_escapes=False)
DIALECTS: Final = {d.name: d for d in (DUCKDB, SPARK, ATHENA)}


def _columns(schema: ActivitySchema) -> list[str]:
    return [f"c{i}" for i in range(len(schema.logs.events))]


def mask_columns(schema: ActivitySchema) -> list[str]:
    """The bitmask columns of ``features_sql``: bit ``k`` of ``mask_j`` is day ``j * MASK_DAYS + k``."""
    return [f"mask_{j}" for j in range(-(-schema.logs.course_days // MASK_DAYS))]


def events_sql(schema: ActivitySchema, dialect: Dialect) -> str:
    """Typed event rows (per event for a long log, per day for a wide one) and rows with a problem."""
    logs, q = schema.logs, dialect.quote
    text = dialect.string_type
    if logs.course_from_filename is not None:
        raw_course = "ccml_file"
        course = f"NULLIF(regexp_extract(raw_course, {dialect.literal(logs.course_pattern or '')}, 1), '')"
    else:
        raw_course = f"CAST({q(logs.course_column or '')} AS {text})"
        course = "NULLIF(TRIM(raw_course), '')"
    raw_ts = f"CAST({q(logs.timestamp)} AS {text})"
    columns = _columns(schema)
    if logs.format == "wide":
        # Each count is parsed once (t_i) next to its cell as read (r_i): a cell that is there
        # but is no whole number >= 0 is a problem; a blank one counts nothing.
        parsed = [f"{q(event)} AS r{i}, TRY_CAST({q(event)} AS BIGINT) AS t{i}" for i, event in enumerate(logs.events)]
        bad_count = " OR ".join(f"t{i} < 0 OR (t{i} IS NULL AND r{i} IS NOT NULL)" for i in range(len(columns)))
        typed_counts = [f"COALESCE(t{i}, 0) AS {name}" for i, name in enumerate(columns)]
        event_type = f"CAST(NULL AS {text})"
    else:
        count = f"TRY_CAST({q(logs.count_column)} AS BIGINT)" if logs.count_column else "CAST(1 AS BIGINT)"
        parsed = [f"{count} AS t0", f"CAST({q(logs.event_column or '')} AS {text}) AS raw_event"]
        bad_count = "t0 IS NULL OR t0 < 0"
        event_type = "raw_event"
        typed_counts = [
            f"CASE WHEN raw_event = {dialect.literal(event)} THEN COALESCE(t0, 0) ELSE 0 END AS {name}"
            for event, name in zip(logs.events, columns, strict=True)
        ]
    label = f"CAST({q(schema.labels.column)} AS {text})" if schema.labels.source == "log" else f"CAST(NULL AS {text})"
    student = f"CAST({q(logs.student_column)} AS {text})" if logs.student_column else f"CAST(NULL AS {text})"
    total = " + ".join(columns)
    # Counts are checked on every row; the rest (the course, the date) only on rows that carry
    # events: a wide log is mostly all-zero days, which say nothing and are dropped first.
    # A wide log's duplicates are found by day: its timestamps are kept only to show a bad one.
    kept_ts = "raw_ts" if logs.format == "long" else "CASE WHEN event_date IS NULL THEN raw_ts END AS raw_ts"
    return f"""SELECT entity, course, event_date, {kept_ts}, event_type, label, student, {", ".join(columns)}, total,
  CASE WHEN entity IS NULL THEN 1 ELSE 0 END AS bad_entity,
  CASE WHEN course IS NULL THEN 1 ELSE 0 END AS bad_course,
  CASE WHEN event_date IS NULL THEN 1 ELSE 0 END AS bad_date,
  bad_count
FROM (
  SELECT NULLIF(TRIM(CAST(raw_entity AS {text})), '') AS entity, {course} AS course,
    {dialect.to_date("raw_ts")} AS event_date, raw_ts, event_type, label, student, {", ".join(columns)},
    {total} AS total, bad_count
  FROM (
    SELECT raw_entity, raw_course, raw_ts, {event_type} AS event_type, label, student, {", ".join(typed_counts)},
      CASE WHEN {bad_count} THEN 1 ELSE 0 END AS bad_count
    FROM (
      SELECT {q(logs.entity)} AS raw_entity, {raw_course} AS raw_course, {raw_ts} AS raw_ts, {label} AS label,
        {student} AS student,
        {", ".join(parsed)}
      FROM ccml_logs
    ) parsed
  ) counted
  WHERE {total} > 0 OR bad_count = 1
) typed"""


# An entity has one course, one label and one student: each a column the SQL carries per entity.
_ONE_PER_ENTITY: Final = {
    "course": "entity in more than one course",
    "label": "entity with more than one label",
    "student": "entity of more than one student",
}


def _good() -> str:
    return "SELECT * FROM ccml_events WHERE bad_entity = 0 AND bad_course = 0 AND bad_date = 0 AND bad_count = 0"


def problems_sql(schema: ActivitySchema, dialect: Dialect) -> str:
    """One row per problem kind: ``problem``, ``n`` (rows or entities) and ``example`` (one offending value)."""
    key = "entity, raw_ts, event_type" if schema.logs.format == "long" else "entity, event_date"
    duplicates = (
        "duplicate events (same entity, timestamp and type)"
        if schema.logs.format == "long"
        else ("duplicate days (the same entity and day more than once)")
    )
    text = dialect.string_type
    parts = [
        ("missing entity id", "bad_entity = 1", "raw_ts"),
        ("missing or unmatched course", "bad_course = 1", "entity"),
        ("unparsable or missing timestamp", "bad_date = 1", "raw_ts"),
        ("count that is not a whole number >= 0", "bad_count = 1", "entity"),
    ]
    selects = [
        f"SELECT {dialect.literal(name)} AS problem, COUNT(*) AS n, MIN(CAST({example} AS {text})) AS example "
        f"FROM ccml_events WHERE {condition}"
        for name, condition, example in parts
    ]
    selects.append(
        f"SELECT {dialect.literal(duplicates)} AS problem, COUNT(*) AS n, MIN(entity) AS example FROM "
        f"(SELECT {key} FROM ({_good()}) good GROUP BY {key} HAVING COUNT(*) > 1) repeated"
    )
    for column in ["course", *carried(schema)]:
        selects.append(
            f"SELECT {dialect.literal(_ONE_PER_ENTITY[column])} AS problem, COUNT(*) AS n, MIN(entity) AS example "
            f"FROM (SELECT entity FROM ({_good()}) good GROUP BY entity HAVING COUNT(DISTINCT {column}) > 1) several"
        )
    return "\nUNION ALL\n".join(selects)


def carried(schema: ActivitySchema) -> list[str]:
    """The per-entity text columns the SQL carries through: the label (from the log) and the student."""
    return [
        c for c, on in (("label", schema.labels.source == "log"), ("student", bool(schema.logs.student_column))) if on
    ]


def _indexed(schema: ActivitySchema, dialect: Dialect, calendar: bool) -> str:
    """The CTEs ``daily`` (one row per entity and active day), ``starts`` and ``indexed`` (with the course day)."""
    sums = ", ".join(f"SUM({c}) AS {c}" for c in _columns(schema))
    labels = "".join(f", MIN({c}) AS {c}" for c in carried(schema))
    passed = "".join(f", {c}" for c in carried(schema))
    if calendar:
        starts = "SELECT course, MIN(start) AS start FROM ccml_calendar GROUP BY course"
    else:
        starts = "SELECT course, MIN(event_date) AS start FROM daily GROUP BY course"
    if schema.logs.format == "wide":  # already one row per entity and day (a repeated day is a problem)
        columns = ", ".join(_columns(schema))
        daily = f"SELECT entity, course, event_date, {columns}, total{passed} FROM ({_good()}) good"
    else:
        daily = (
            f"SELECT entity, course, event_date, {sums}, SUM(total) AS total{labels} "
            f"FROM ({_good()}) good GROUP BY entity, course, event_date"
        )
    return f"""daily AS ({daily}),
starts AS ({starts}),
indexed AS (
  SELECT d.*, {dialect.day_diff("s.start", "d.event_date")} AS day_index
  FROM daily d JOIN starts s ON d.course = s.course
)"""


def progress_sql(schema: ActivitySchema, dialect: Dialect, *, calendar: bool = False) -> str:
    """Per course: its current day (the day after the last one with an event, at most the course's length)."""
    return f"""WITH {_indexed(schema, dialect, calendar)}
SELECT course, LEAST(MAX(day_index) + 1, {schema.logs.course_days}) AS current_day
FROM indexed WHERE day_index >= 0 GROUP BY course"""


def features_sql(
    schema: ActivitySchema, dialect: Dialect, days: list[int], *, calendar: bool = False, enrollments: bool = False
) -> str:
    """Per entity and cut-off day: the aggregates ``ccml.activity.features`` turns into the feature table.

    With ``calendar``, courses start on the day a relation ``ccml_calendar(course, start)`` gives
    (rows before it are ignored); otherwise on the first day any of their entities was active.
    With ``enrollments``, the entities of ``ccml_enrollments(entity, course)`` are in the table
    too, with no events if the log has none of them: an enrollment that never shows up is the one
    most at risk, and an event log cannot say it exists.
    """
    if not days:
        raise ValueError("features_sql needs at least one cut-off day")
    columns = _columns(schema)
    cutoffs = ", ".join(f"({int(d)})" for d in sorted(set(days)))
    masks = ", ".join(
        f"SUM(CASE WHEN i.day_index >= {j * MASK_DAYS} AND i.day_index < {(j + 1) * MASK_DAYS} "
        f"THEN POWER(2, i.day_index - {j * MASK_DAYS}) ELSE 0 END) AS {name}"
        for j, name in enumerate(mask_columns(schema))
    )
    filled = ", ".join(f"COALESCE(a.{c}, 0) AS {c}" for c in columns)
    filled_masks = ", ".join(f"COALESCE(a.{m}, 0) AS {m}" for m in mask_columns(schema))
    labels = "".join(f", MIN({c}) AS {c}" for c in carried(schema))
    label_out = "".join(f", r.{c}" for c in carried(schema))
    seen = "daily"
    if enrollments:  # the list has no labels; it may name each enrollment's student
        passed = "".join(f", {c}" for c in carried(schema))
        listed = "".join(
            f", {c}" if c == "student" else f", CAST(NULL AS {dialect.string_type}) AS {c}" for c in carried(schema)
        )
        seen = (
            f"(SELECT entity, course{passed} FROM daily UNION ALL "
            f"SELECT entity, course{listed} FROM ccml_enrollments) known"
        )
    return f"""WITH {_indexed(schema, dialect, calendar)},
roster AS (SELECT entity, MIN(course) AS course{labels} FROM {seen} GROUP BY entity),
cutoffs AS (SELECT cutoff FROM (VALUES {cutoffs}) AS v(cutoff)),
aggregated AS (
  SELECT i.entity, c.cutoff, {", ".join(f"SUM(i.{col}) AS {col}" for col in columns)},
    COUNT(*) AS active_days, MIN(i.day_index) AS first_day, MAX(i.day_index) AS last_day,
    SUM(i.day_index * i.total) AS day_events,
    SUM(CASE WHEN i.day_index >= c.cutoff - {LAST_WEEK_DAYS} THEN i.total ELSE 0 END) AS last_week_events,
    SUM(CASE WHEN i.day_index >= c.cutoff - {LAST_WEEK_DAYS} THEN 1 ELSE 0 END) AS last_week_days,
    SUM(CASE WHEN 2 * i.day_index >= c.cutoff THEN i.total ELSE 0 END) AS late_events,
    {masks}
  FROM indexed i JOIN cutoffs c ON i.day_index >= 0 AND i.day_index < c.cutoff
  WHERE i.total > 0
  GROUP BY i.entity, c.cutoff
)
SELECT r.entity, r.course, c.cutoff{label_out}, {filled},
  COALESCE(a.active_days, 0) AS active_days, a.first_day, a.last_day, COALESCE(a.day_events, 0) AS day_events,
  COALESCE(a.last_week_events, 0) AS last_week_events, COALESCE(a.last_week_days, 0) AS last_week_days,
  COALESCE(a.late_events, 0) AS late_events, {filled_masks}
FROM roster r CROSS JOIN cutoffs c
LEFT JOIN aggregated a ON a.entity = r.entity AND a.cutoff = c.cutoff
ORDER BY r.course, c.cutoff, r.entity"""
