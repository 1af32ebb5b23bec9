"""The declaration of an activity log, and the per-enrollment feature table it turns into.

A schema file with a ``[logs]`` table describes an event log instead of a finished table: where
the entity (enrollment), timestamp, event types, counts and course are, where labels come from,
and the course length. ``ActivitySchema.feature_schema()`` is the ordinary ``FeatureSchema`` of
the table that ``ccml.activity`` computes from such a log as of a course day, so training,
validation, the store and the API treat it like any other table.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ccml.core.errors import SchemaError
from ccml.core.schema import Category, Feature, FeatureSchema, Target

ACTIVITY_SCHEMA_RESOURCE: Final = "activity.toml"
# Counts above this are not plausible for one enrollment: the feature ranges of the derived schema.
MAX_EVENTS: Final = 10**9
LAST_WEEK_DAYS: Final = 7
COURSE_COLUMN: Final = "course"
STUDENT_COLUMN: Final = "student"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogDeclaration(_Frozen):
    """Where the log's fields are.

    ``format = "long"``: one row per event, its type in ``event_column`` and an optional
    ``count_column`` (1 per row without one). ``format = "wide"``: one row per entity and day,
    one count column per event type (``events`` names them). The course is a column
    (``course_column``) or the named group ``course`` of a regular expression on the file name
    (``course_from_filename``). ``student_column`` names the student of each enrollment where a
    student may have several (folds can then keep a student's enrollments together).
    """

    format: Literal["long", "wide"]
    entity: str
    timestamp: str
    events: Annotated[list[str], Field(min_length=1)]
    event_column: str | None = None
    count_column: str | None = None
    course_column: str | None = None
    course_from_filename: str | None = None
    student_column: str | None = None
    course_days: Annotated[int, Field(ge=LAST_WEEK_DAYS, le=366)] = 30

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.format == "long" and self.event_column is None:
            raise ValueError("a long log needs event_column (the column holding each event's type)")
        if self.format == "wide" and (self.event_column or self.count_column):
            raise ValueError(
                "a wide log has one count column per event type: event_column/count_column are for long logs"
            )
        if (self.course_column is None) == (self.course_from_filename is None):
            raise ValueError("declare exactly one of course_column and course_from_filename")
        if self.course_from_filename is not None:
            try:
                pattern = re.compile(self.course_from_filename)
            except re.error as exc:
                raise ValueError(f"course_from_filename is not a regular expression: {exc}") from exc
            if "course" not in pattern.groupindex:
                raise ValueError("course_from_filename needs a named group: (?P<course>...)")
        if len(set(self.events)) != len(self.events):
            raise ValueError("events must be unique")
        return self

    @property
    def course_pattern(self) -> str | None:
        """``course_from_filename`` with its named group made positional (SQL's regexp_extract takes group 1)."""
        if self.course_from_filename is None:
            return None
        return self.course_from_filename.replace("(?P<course>", "(", 1)


class LabelDeclaration(_Frozen):
    """Where the outcome is: a column of a separate labels file (joined on ``entity``), or of the log itself.

    ``labels_without_logs`` / ``logs_without_labels``: whether labelled entities with no event,
    and entities of the log with no label, are errors (the default) or dropped and counted.
    """

    source: Literal["file", "log"] = "file"
    entity: str | None = None
    column: str
    completed_value: Category
    labels: tuple[str, str] = ("Not Completed", "Completed")
    description: str = ""
    labels_without_logs: Literal["error", "drop"] = "error"
    logs_without_labels: Literal["error", "drop"] = "error"


class CalendarDeclaration(_Frozen):
    """The columns of an optional course calendar file (one row per course with its first day)."""

    course: str = "course_id"
    start: str = "start"


def event_feature(event: str) -> str:
    """The feature name of an event type's count: ``event_access`` and ``access`` both give ``n_access``."""
    slug = re.sub(r"[^a-z0-9]+", "_", event.lower()).strip("_")
    slug = slug.removeprefix("event_") or "events"
    return f"n_{slug}" if slug[0].isalpha() else f"n_e{slug}"


def _integer(name: str, high: float, description: str) -> Feature:
    return Feature(name=name, column=name, type="integer", min=0, max=high, description=description)


def _numeric(name: str, low: float, high: float, description: str, *, optional: bool = False) -> Feature:
    return Feature(
        name=name, column=name, type="numeric", min=low, max=high, description=description, optional=optional
    )


class ActivitySchema(_Frozen):
    """An activity log's declaration: logs, labels, calendar and the default horizons (course days)."""

    name: str
    description: str = ""
    logs: LogDeclaration
    labels: LabelDeclaration
    calendar: CalendarDeclaration = CalendarDeclaration()
    horizons: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = [7, 14, 21, 30]

    @model_validator(mode="after")
    def _check(self) -> Self:
        features = [event_feature(e) for e in self.logs.events]
        if len(set(features)) != len(features):
            raise ValueError(f"event types must give distinct feature names; they give {features}")
        late = [d for d in self.horizons if d > self.logs.course_days]
        if late:
            raise ValueError(f"horizons {late} lie past the course's {self.logs.course_days} days")
        return self

    @property
    def entity(self) -> str:
        """The entity (enrollment) id column of the feature table and of the labels file."""
        return self.labels.entity or self.logs.entity

    def event_features(self) -> list[str]:
        """The count features, one per event type, in declaration order."""
        return [event_feature(e) for e in self.logs.events]

    def features(self) -> list[Feature]:
        """Every feature of the table as of a course day (``ccml.activity.features`` computes them)."""
        days = float(self.logs.course_days)
        counts = [
            _integer(n, MAX_EVENTS, f"{e} events before the day.")
            for n, e in zip(self.event_features(), self.logs.events, strict=True)
        ]
        return [
            *counts,
            _integer("n_events", MAX_EVENTS, "All events before the day."),
            _integer("active_days", days, "Days with at least one event."),
            _integer("first_active_day", days, "Course day of the first event (the day itself when never active)."),
            _integer("days_since_active", days, "Days since the last active day (the day itself when never active)."),
            _integer("longest_gap", days, "Longest run of days without an event, up to the day."),
            _integer("active_days_last_week", LAST_WEEK_DAYS, "Active days among the 7 days before the day."),
            _integer("n_events_last_week", MAX_EVENTS, "Events in the 7 days before the day."),
            _numeric("late_share", 0, 1, "Share of the events in the later half of the days so far."),
            _numeric("trend", -MAX_EVENTS, MAX_EVENTS, "Least-squares slope of daily events over the days so far."),
            # Optional (may be constant): by a late day every enrollment of a log may have been active.
            Feature(
                name="never_active",
                column="never_active",
                type="boolean",
                description="No event before the day.",
                optional=True,
            ),
            _numeric("events_vs_course", 0, MAX_EVENTS, "Events against the course's median (+1) on the same day."),
            _numeric("active_days_vs_course", 0, days + 1, "Active days against the course's median (+1)."),
            _numeric("last_week_vs_course", 0, MAX_EVENTS, "Last week's events against the course's median (+1)."),
            _numeric(
                "course_active_last_week",
                0,
                1,
                "Share of the course's enrollments active in the last week.",
                optional=True,
            ),
        ]

    def feature_schema(self) -> FeatureSchema:
        """The ``FeatureSchema`` of the per-enrollment table (ids: entity, course, day)."""
        target = Target(
            column=self.labels.column,
            completed_value=self.labels.completed_value,
            labels=self.labels.labels,
            description=self.labels.description,
        )
        return FeatureSchema(
            name=self.name,
            description=self.description,
            id_columns=[self.entity, COURSE_COLUMN, "day", *([STUDENT_COLUMN] if self.logs.student_column else [])],
            target=target,
            features=self.features(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> ActivitySchema:
        """Validate a declaration; ``SchemaError`` lists every problem by field path."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors())
            raise SchemaError(f"activity schema {origin} is invalid: {problems}") from exc


def read_schema_data(path: Path | str | None) -> tuple[dict[str, Any], str]:
    """The parsed TOML of a schema file (the built-in activity schema when ``path`` is None), and its origin."""
    if path is None:
        text = resources.files("ccml.builtin_schemas").joinpath(ACTIVITY_SCHEMA_RESOURCE).read_text("utf-8")
        origin = f"builtin:{ACTIVITY_SCHEMA_RESOURCE}"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise SchemaError(f"cannot read schema file {path}: {exc.strerror or exc}") from exc
        origin = str(path)
    try:
        return tomllib.loads(text), origin
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"schema {origin} is not valid TOML: {exc}") from exc


def is_activity_data(data: dict[str, Any]) -> bool:
    """Whether parsed schema data declares an activity log (a ``[logs]`` table)."""
    return "logs" in data


def load_activity_schema(path: Path | str | None = None) -> ActivitySchema:
    """Load an activity schema file, or the built-in one (the synthetic logs) when ``path`` is None.

    Raises:
        SchemaError: unreadable, not TOML, invalid, or a table schema (no ``[logs]``).
    """
    data, origin = read_schema_data(path)
    if not is_activity_data(data):
        raise SchemaError(f"schema {origin} declares a table, not an activity log: it has no [logs] table")
    return ActivitySchema.from_dict(data, origin=origin)
