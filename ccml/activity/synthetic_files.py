"""Writing synthetic activity logs: the long form as ``events.csv``, or KDD's wide daily form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ccml.activity.synthetic import EVENT_COLUMNS, EVENT_TYPES, TIMESTAMP_FORMAT, Bools, SyntheticLogs
from ccml.core.errors import DataValidationError, ValidationIssue


def to_wide(
    events: pd.DataFrame, calendar: pd.DataFrame, days: int, *, enrollments: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Count ``events`` per enrollment, course day and type, as KDD's daily files do.

    One row per enrollment and day of its course's window, zeros included, by course, enrollment
    and day: ``enrollment_id, course_id, time`` (ISO date) and an ``event_<type>`` count per type.
    The enrollments are ``enrollments`` (``enrollment_id, course_id``) when given, so that those
    without any event get their all-zero rows; otherwise those the events name.

    Raises:
        DataValidationError: a column is missing, a course or enrollment is listed twice, or an event
            cannot be placed (stamp not ``YYYY-MM-DDTHH:MM:SS``, unknown course, type or enrollment, or
            outside its course's window); every problem of the events at once.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    keys = events if enrollments is None else enrollments
    needed: list[tuple[str, pd.DataFrame, tuple[str, ...]]] = [
        ("events", events, ("enrollment_id", "course_id", "timestamp", "event")),
        ("calendar", calendar, ("course_id", "start")),
        ("enrollments", keys, ("enrollment_id", "course_id")),
    ]
    missing = [ValidationIssue(c, f"missing from the {name}") for name, f, cols in needed for c in cols if c not in f]
    if missing:
        raise DataValidationError(missing)
    if calendar["course_id"].duplicated().any():
        raise DataValidationError([_issue("course_id", "twice in the calendar", calendar["course_id"].duplicated())])
    carried = ["student_id"] if "student_id" in keys else []
    keys = keys[["enrollment_id", "course_id", *carried]].drop_duplicates()
    keys = keys.sort_values(["course_id", "enrollment_id"], ignore_index=True)
    twice = keys["enrollment_id"][keys["enrollment_id"].duplicated()].unique()
    if len(twice):
        ids = ", ".join(map(str, twice[:5]))
        raise DataValidationError([ValidationIssue("enrollment_id", f"in two courses (ids {ids})", len(twice))])
    starts = pd.to_datetime(calendar.set_index("course_id")["start"], format="%Y-%m-%d")
    stamp = pd.to_datetime(events["timestamp"], format=TIMESTAMP_FORMAT, errors="coerce")
    day = (stamp.dt.normalize() - events["course_id"].map(starts)).dt.days.to_numpy(dtype=float, na_value=np.nan)
    kind = pd.Index(EVENT_TYPES).get_indexer(pd.Index(events["event"])).astype(np.int64)
    row = pd.Index(keys["enrollment_id"]).get_indexer(events["enrollment_id"])
    listed = events["course_id"].isin(starts.index).to_numpy()  # an unknown course is its own issue
    unlisted = (row < 0) | (listed & (keys["course_id"].to_numpy()[row] != events["course_id"].to_numpy()))
    checks = [
        ("timestamp", "not a YYYY-MM-DDTHH:MM:SS stamp", stamp.isna().to_numpy()),
        ("course_id", "not in the calendar", stamp.notna().to_numpy() & np.isnan(day)),
        ("timestamp", f"outside its course's {days}-day window", (day < 0) | (day >= days)),
        ("event", f"not one of {', '.join(EVENT_TYPES)}", kind < 0),
        ("enrollment_id", "not among the enrollments of its course", unlisted),
    ]
    issues = [_issue(column, problem, bad) for column, problem, bad in checks if bad.any()]
    if issues:
        raise DataValidationError(issues)
    cell = (row * days + day.astype(np.int64)) * len(EVENT_TYPES) + kind
    counts = np.bincount(cell, minlength=len(keys) * days * len(EVENT_TYPES)).reshape(-1, len(EVENT_TYPES))
    first = keys["course_id"].map(starts).to_numpy(dtype="datetime64[D]")
    time = np.repeat(first, days) + np.tile(np.arange(days), len(keys))
    wide = pd.DataFrame(
        {
            "enrollment_id": np.repeat(keys["enrollment_id"].to_numpy(dtype=np.int64), days),
            "course_id": pd.Series(np.repeat(keys["course_id"].to_numpy(dtype=object), days), dtype="str"),
            "time": pd.Series(np.datetime_as_string(time, unit="D").astype(object), dtype="str"),
        }
    )
    for column in carried:
        wide[column] = pd.Series(np.repeat(keys[column].to_numpy(dtype=object), days), dtype="str")
    wide[list(EVENT_COLUMNS)] = counts
    return wide


def _issue(column: str, problem: str, bad: Bools | pd.Series[bool]) -> ValidationIssue:
    where = np.flatnonzero(np.asarray(bad))
    return ValidationIssue(column, problem, len(where), tuple(int(r) for r in where[:5]))


def write_logs(logs: SyntheticLogs, directory: Path, *, wide: bool = False) -> dict[str, Path]:
    """Write the logs as CSV files under ``directory``; return each file's path by its stem.

    ``events.csv`` (the long form) or, with ``wide``, one ``course_<id>.csv`` per course in KDD's
    daily form (no course column: the file name says it); then ``labels.csv``, ``calendar.csv``
    and ``enrollments.csv``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    frames: dict[str, pd.DataFrame] = {"events": logs.events}
    if wide:
        daily = to_wide(logs.events, logs.calendar, logs.days, enrollments=logs.enrollments)
        frames = {f"course_{c}": frame.drop(columns="course_id") for c, frame in daily.groupby("course_id")}
    frames |= {"labels": logs.labels, "calendar": logs.calendar, "enrollments": logs.enrollments}
    paths = {stem: directory / f"{stem}.csv" for stem in frames}
    for stem, frame in frames.items():
        frame.to_csv(paths[stem], index=False)
    return paths
