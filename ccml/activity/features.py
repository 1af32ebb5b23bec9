"""From the SQL's aggregates to the feature table as of a course day.

The SQL reduces millions of log rows to one row per entity and cut-off day; what is left is
arithmetic on those rows (NumPy, the same whichever engine ran the query): the longest gap from
the active-day bitmasks, the least-squares trend, shares, and each entity against its course on
the same day. Only events strictly before the cut-off day reach the aggregates, so nothing from
that day or later can leak into the features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ccml.activity.sql import MASK_DAYS, mask_columns
from ccml.core.activity import COURSE_COLUMN, STUDENT_COLUMN, ActivitySchema

Array = np.ndarray[Any, np.dtype[Any]]


def active_matrix(schema: ActivitySchema, aggregates: pd.DataFrame) -> Array:
    """Rows x course days: whether the entity was active that day (decoded from the bitmasks)."""
    days = schema.logs.course_days
    matrix = np.zeros((len(aggregates), days), dtype=bool)
    for j, name in enumerate(mask_columns(schema)):
        masks = aggregates[name].to_numpy(dtype=np.float64).astype(np.int64)
        for bit in range(min(MASK_DAYS, days - j * MASK_DAYS)):
            matrix[:, j * MASK_DAYS + bit] = (masks >> bit) & 1 == 1
    return matrix


def longest_gap(active: Array, cutoff: Array) -> Array:
    """Longest run of inactive days among days ``0 .. cutoff - 1`` of each row."""
    run = np.zeros(len(active), dtype=np.int64)
    longest = np.zeros(len(active), dtype=np.int64)
    for day in range(active.shape[1]):
        counted = day < cutoff
        run = np.where(counted, np.where(active[:, day], 0, run + 1), run)
        longest = np.maximum(longest, run)
    return longest


def _trend(events: Array, day_events: Array, cutoff: Array) -> Array:
    """Least-squares slope of daily events (zeros included) against the day, days 0 .. cutoff - 1."""
    n = cutoff.astype(np.float64)
    sum_x = n * (n - 1) / 2
    sum_xx = (n - 1) * n * (2 * n - 1) / 6
    denominator = n * sum_xx - sum_x**2
    numerator = n * day_events - sum_x * events
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)
    return np.round(slope, 9)


def _versus_course(frame: pd.DataFrame, column: str, groups: Array) -> pd.Series:
    median = frame[column].groupby(groups).transform("median")
    return (frame[column] / (median + 1.0)).round(9)


def _sorted(frame: pd.DataFrame) -> bool:
    """Whether rows are in (course, day, entity) order: cheaper to check than to sort again."""
    course = frame[COURSE_COLUMN].astype(str).to_numpy()
    day = frame["day"].to_numpy()
    entity = frame["entity"].astype(str).to_numpy()
    a, b = slice(None, -1), slice(1, None)
    before = (course[a] < course[b]) | (
        (course[a] == course[b]) & ((day[a] < day[b]) | ((day[a] == day[b]) & (entity[a] <= entity[b])))
    )
    return bool(np.all(before))


def feature_table(schema: ActivitySchema, aggregates: pd.DataFrame) -> pd.DataFrame:
    """The table ``schema.feature_schema()`` describes: ids (entity, course, day), then every feature.

    ``aggregates`` is the result of ``features_sql`` (any engine, any row order); the rows come
    out sorted by course, day and entity, so equal inputs give equal tables.
    """
    raw = aggregates.rename(columns={"cutoff": "day"})
    if not _sorted(raw):  # the SQL orders its rows; a frame from elsewhere may not be
        raw = raw.sort_values([COURSE_COLUMN, "day", "entity"], kind="stable")
    raw = raw.reset_index(drop=True)
    cutoff = raw["day"].to_numpy(dtype=np.int64)
    out = pd.DataFrame({schema.entity: raw["entity"].astype(str), COURSE_COLUMN: raw[COURSE_COLUMN].astype(str)})
    out["day"] = cutoff
    counts = [raw[f"c{i}"].to_numpy(dtype=np.int64) for i in range(len(schema.logs.events))]
    for name, values in zip(schema.event_features(), counts, strict=True):
        out[name] = values
    events = np.sum(counts, axis=0) if counts else np.zeros(len(raw), dtype=np.int64)
    active_days = raw["active_days"].to_numpy(dtype=np.int64)
    never = active_days == 0
    first = raw["first_day"].to_numpy(dtype=np.float64)
    last = raw["last_day"].to_numpy(dtype=np.float64)
    out["n_events"] = events
    out["active_days"] = active_days
    out["first_active_day"] = np.where(never, cutoff, np.nan_to_num(first)).astype(np.int64)
    out["days_since_active"] = np.where(never, cutoff, cutoff - np.nan_to_num(last)).astype(np.int64)
    out["longest_gap"] = longest_gap(active_matrix(schema, raw), cutoff)
    out["active_days_last_week"] = raw["last_week_days"].to_numpy(dtype=np.int64)
    out["n_events_last_week"] = raw["last_week_events"].to_numpy(dtype=np.int64)
    late = raw["late_events"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["late_share"] = np.round(np.where(events > 0, late / np.maximum(events, 1), 0.0), 9)
    out["trend"] = _trend(events.astype(np.float64), raw["day_events"].to_numpy(dtype=np.float64), cutoff)
    out["never_active"] = never
    # One code per (course, day), found once: grouping by an integer is cheaper than by two keys.
    groups = out.groupby([COURSE_COLUMN, "day"], sort=False).ngroup().to_numpy()
    out["events_vs_course"] = _versus_course(out, "n_events", groups)
    out["active_days_vs_course"] = _versus_course(out, "active_days", groups)
    out["last_week_vs_course"] = _versus_course(out, "n_events_last_week", groups)
    active_last_week = (out["active_days_last_week"] > 0).astype(np.float64)
    out["course_active_last_week"] = active_last_week.groupby(groups).transform("mean").round(9)
    if "label" in raw.columns and schema.labels.source == "log":
        out[schema.labels.column] = raw["label"].to_numpy()
    if schema.logs.student_column:
        out[STUDENT_COLUMN] = raw[STUDENT_COLUMN].astype(str).to_numpy()
    return out
