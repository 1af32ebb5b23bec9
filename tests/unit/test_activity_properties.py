"""Properties of the features as of a course day, on generated logs (DuckDB, the default engine)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccml.activity.aggregation import aggregate
from ccml.activity.engines import DuckDBEngine
from ccml.core.activity import ActivitySchema, load_activity_schema
from tests.activity_reference import reference_table

LONG = load_activity_schema()  # the built-in schema: long format, course column, seven event types
WIDE = ActivitySchema.from_dict(
    {
        "name": "wide-twin",
        "logs": {
            "format": "wide",
            "entity": "enrollment_id",
            "timestamp": "time",
            "course_column": "course_id",
            "student_column": "student_id",
            "events": [f"event_{e}" for e in LONG.logs.events],
        },
        "labels": {"column": "label", "completed_value": 0},
    }
)
START = dt.datetime(2024, 3, 4)
FEATURES = LONG.feature_schema().feature_names

# One event: (entity 1..6, course index, day 0..29, second of the day, event type index).
event = st.tuples(st.integers(1, 6), st.integers(0, 1), st.integers(0, 29), st.integers(0, 86_399), st.integers(0, 6))
logs = st.lists(event, min_size=1, max_size=60)
day = st.integers(1, 30)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def frame(events: list[tuple[int, int, int, int, int]]) -> pd.DataFrame:
    """A long log; an entity belongs to one course (its id decides which), as enrollments do."""
    rows = []
    # A log holds each event once (a repeated one is a validation problem, tested elsewhere).
    for entity, day_index, second, kind in sorted({(e, d, s, k) for e, _, d, s, k in events}):
        course = f"C{entity % 2}"
        stamp = START + dt.timedelta(days=day_index, seconds=second)
        rows.append(
            {
                "enrollment_id": entity,
                "course_id": course,
                "timestamp": stamp.isoformat(),
                "event": LONG.logs.events[kind],
                "student_id": f"S{entity // 3}",  # some students take both courses
            }
        )
    return pd.DataFrame(rows)


def features(tmp: Path, log: pd.DataFrame, days: list[int], schema: ActivitySchema = LONG) -> pd.DataFrame:
    path = tmp / f"log-{len(list(tmp.iterdir()))}.csv"
    log.to_csv(path, index=False)
    return aggregate(DuckDBEngine(), schema, [path], days).table


def to_wide(log: pd.DataFrame) -> pd.DataFrame:
    """The same events as one row per entity and day, with an all-zero day added per entity."""
    when = pd.to_datetime(log["timestamp"]).dt.strftime("%Y-%m-%d")
    counts = pd.crosstab([log["enrollment_id"], log["course_id"], log["student_id"], when.rename("time")], log["event"])
    counts = counts.reindex(columns=LONG.logs.events, fill_value=0).add_prefix("event_").reset_index()
    quiet = counts.drop_duplicates("enrollment_id").assign(time="2024-05-30")  # past every cut-off: no events
    quiet[[f"event_{e}" for e in LONG.logs.events]] = 0
    return pd.concat([counts, quiet], ignore_index=True)


@SETTINGS
@given(base=logs, later=logs, cutoff=day)
def test_events_on_or_after_the_day_never_change_the_features_at_that_day(
    tmp_path: Path, base: list, later: list, cutoff: int
) -> None:
    known = sorted({e[0] for e in base})
    # A course starts on its first active day: later events are placed relative to it.
    start = {entity % 2: min(d for e, _, d, _, _ in base if e % 2 == entity % 2) for entity in known}
    # Later events of entities the log already has, on the cut-off day or after it.
    extra = []
    for i, (_, c, d, s, k) in enumerate(later):
        entity = known[i % len(known)]
        extra.append((entity, c, start[entity % 2] + max(d, cutoff), s, k))
    before = features(tmp_path, frame(base), [cutoff])
    after = features(tmp_path, frame(base + extra), [cutoff])
    pd.testing.assert_frame_equal(before, after)


@SETTINGS
@given(events=logs, cutoff=day, seed=st.integers(0, 2**16))
def test_row_order_never_matters(tmp_path: Path, events: list, cutoff: int, seed: int) -> None:
    log = frame(events)
    shuffled = log.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    pd.testing.assert_frame_equal(features(tmp_path, log, [cutoff]), features(tmp_path, shuffled, [cutoff]))


@SETTINGS
@given(events=logs, cutoff=st.integers(1, 20))
def test_an_entity_with_no_events_before_the_day_gets_zeros_and_never_active(
    tmp_path: Path, events: list, cutoff: int
) -> None:
    late = [(7, 0, cutoff + d % (30 - cutoff), s, k) for (_, _, d, s, k) in events]  # entity 7: only from the day on
    anchor = [(5, 0, 0, 0, 0)]  # its course (C1) starts on day 0
    table = features(tmp_path, frame(events + late + anchor), [cutoff])
    assert not table[FEATURES].isna().any().any()
    row = table[table["enrollment_id"] == "7"].iloc[0]
    assert bool(row["never_active"]) is True
    counts = [*LONG.event_features(), "n_events", "active_days", "active_days_last_week", "n_events_last_week"]
    assert (row[counts] == 0).all()
    assert row["days_since_active"] == row["first_active_day"] == row["longest_gap"] == cutoff
    assert row["late_share"] == row["trend"] == 0


@SETTINGS
@given(events=logs, days=st.lists(day, min_size=1, max_size=3, unique=True))
def test_long_and_wide_logs_of_the_same_events_give_the_same_features(tmp_path: Path, events: list, days: list) -> None:
    log = frame(events)
    long = features(tmp_path, log, days)
    wide = features(tmp_path, to_wide(log), days, WIDE)
    pd.testing.assert_frame_equal(long, wide)


@SETTINGS
@given(events=logs, days=st.lists(day, min_size=1, max_size=3, unique=True))
def test_duckdb_matches_the_pandas_reference(tmp_path: Path, events: list, days: list) -> None:
    path = tmp_path / "log.csv"
    frame(events).to_csv(path, index=False)
    engine = aggregate(DuckDBEngine(), LONG, [path], days).table
    pd.testing.assert_frame_equal(engine, reference_table(LONG, [path], days), check_dtype=False)


@pytest.mark.parametrize("cutoff", [1, 5, 17, 30])
def test_longest_gap_counts_the_quiet_days_before_the_first_between_and_after_the_last(
    tmp_path: Path, cutoff: int
) -> None:
    active = [0, 3, 4, 12] if cutoff > 1 else [0]
    log = frame([(1, 0, d, 60, 0) for d in active] + [(3, 0, 29, 60, 0)])  # entity 3 fixes the course start at day 0
    row = features(tmp_path, log, [cutoff]).set_index("enrollment_id").loc["1"]
    seen = sorted(d for d in active if d < cutoff)
    quiet = np.ones(cutoff, dtype=bool)
    quiet[seen] = False
    runs, run = [0], 0
    for q in quiet:
        run = run + 1 if q else 0
        runs.append(run)
    assert row["longest_gap"] == max(runs)
    assert row["active_days"] == len(seen)
    assert row["days_since_active"] == cutoff - max(seen)
