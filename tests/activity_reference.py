"""A pandas reference of the aggregation SQL, written from the declaration's meaning, not from the SQL.

Tests feed it the same files as the engines and compare the feature tables cell for cell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ccml.activity.features import feature_table
from ccml.activity.sql import MASK_DAYS, mask_columns
from ccml.core.activity import LAST_WEEK_DAYS, ActivitySchema


def read_logs(schema: ActivitySchema, paths: Sequence[Path]) -> pd.DataFrame:
    """Every file's rows as text, with the course each belongs to."""
    logs = schema.logs
    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if logs.course_from_filename:
            match = re.search(logs.course_from_filename, str(path))
            frame["__course"] = match.group("course") if match else ""
        else:
            frame["__course"] = frame[logs.course_column or ""].str.strip()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def daily_events(schema: ActivitySchema, raw: pd.DataFrame) -> pd.DataFrame:
    """entity, course, date and one count column per event type, one row per entity and active day."""
    logs = schema.logs
    out = pd.DataFrame({"entity": raw[logs.entity].str.strip(), "course": raw["__course"]})
    out["date"] = pd.to_datetime(raw[logs.timestamp], format="ISO8601").dt.normalize()
    names = [f"c{i}" for i in range(len(logs.events))]
    if logs.format == "wide":
        for name, event in zip(names, logs.events, strict=True):
            out[name] = raw[event].astype(np.int64)
    else:
        n = raw[logs.count_column].astype(np.int64) if logs.count_column else pd.Series(1, index=raw.index)
        for name, event in zip(names, logs.events, strict=True):
            out[name] = np.where(raw[logs.event_column or ""] == event, n, 0)
    out["total"] = out[names].sum(axis=1)
    out = out[out["total"] > 0]
    daily = out.groupby(["entity", "course", "date"], as_index=False)[[*names, "total"]].sum()
    if logs.student_column:
        student = raw.loc[out.index, logs.student_column].groupby([out["entity"], out["course"], out["date"]]).min()
        daily = daily.join(student.rename("student"), on=["entity", "course", "date"])
    return daily


def reference_aggregates(
    schema: ActivitySchema,
    paths: Sequence[Path],
    days: Sequence[int],
    calendar: pd.DataFrame | None = None,
    enrollments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What ``features_sql`` returns, computed with pandas."""
    daily = daily_events(schema, read_logs(schema, paths))
    names = [f"c{i}" for i in range(len(schema.logs.events))]
    if calendar is not None:
        starts = pd.to_datetime(calendar.set_index(schema.calendar.course)[schema.calendar.start]).rename("start")
        starts.index = starts.index.astype(str)
    else:
        starts = daily.groupby("course")["date"].min().rename("start")
    daily = daily.join(starts, on="course")
    daily["day_index"] = (daily["date"] - daily["start"]).dt.days
    carried = ["course", *(["student"] if schema.logs.student_column else [])]
    known = daily[["entity", *carried]]
    if enrollments is not None:
        sources = [
            schema.entity,
            schema.calendar.course,
            *([schema.logs.student_column] if schema.logs.student_column else []),
        ]
        listed = enrollments[sources].astype(str)
        known = pd.concat([known, listed.set_axis(["entity", *carried], axis=1)])
    everyone = known.groupby("entity")[carried].min()
    roster = everyone["course"]
    parts = []
    for cutoff in sorted(set(days)):
        seen = daily[(daily["day_index"] >= 0) & (daily["day_index"] < cutoff)].copy()
        seen["day_events"] = seen["day_index"] * seen["total"]
        last_week = seen["day_index"] >= cutoff - LAST_WEEK_DAYS
        seen["last_week_events"] = seen["total"].where(last_week, 0)
        seen["last_week_days"] = last_week.astype(np.int64)
        seen["late_events"] = seen["total"].where(2 * seen["day_index"] >= cutoff, 0)
        for j, mask in enumerate(mask_columns(schema)):
            inside = (seen["day_index"] >= j * MASK_DAYS) & (seen["day_index"] < (j + 1) * MASK_DAYS)
            seen[mask] = np.where(inside, 2.0 ** (seen["day_index"] - j * MASK_DAYS), 0.0)
        summed = [*names, "day_events", "last_week_events", "last_week_days", "late_events", *mask_columns(schema)]
        grouped = seen.groupby("entity")
        per_entity = grouped[summed].sum()
        per_entity["active_days"] = grouped.size()
        per_entity["first_day"] = grouped["day_index"].min().astype(np.float64)
        per_entity["last_day"] = grouped["day_index"].max().astype(np.float64)
        per_entity = per_entity.reindex(roster.index)
        filled = [c for c in per_entity.columns if c not in ("first_day", "last_day")]
        per_entity[filled] = per_entity[filled].fillna(0)
        for column in carried:
            per_entity[column] = everyone[column]
        per_entity["cutoff"] = cutoff
        parts.append(per_entity.reset_index())
    return pd.concat(parts, ignore_index=True)


def reference_table(
    schema: ActivitySchema,
    paths: Sequence[Path],
    days: Sequence[int],
    calendar: pd.DataFrame | None = None,
    enrollments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The feature table the engines should produce for ``paths``."""
    return feature_table(schema, reference_aggregates(schema, paths, days, calendar, enrollments))
