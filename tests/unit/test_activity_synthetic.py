from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from ccml.activity.synthetic import EVENT_COLUMNS, EVENT_TYPES, SyntheticLogs, generate_logs
from ccml.activity.synthetic_files import to_wide, write_logs
from ccml.core.errors import DataValidationError

STAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"


@pytest.fixture(scope="module")
def logs() -> SyntheticLogs:
    return generate_logs(seed=11)


def course_day(logs: SyntheticLogs) -> pd.Series[int]:
    """Each event's day within its course's window, computed from the frames alone."""
    start = pd.to_datetime(logs.events["course_id"].map(logs.calendar.set_index("course_id")["start"]))
    return (pd.to_datetime(logs.events["timestamp"]).dt.normalize() - start).dt.days


def features(logs: SyntheticLogs, before: int) -> pd.DataFrame:
    """Per-enrollment counts of each event type and of active days over days < ``before``, all enrollments."""
    day = course_day(logs)
    early = logs.events[day < before].assign(day=day[day < before])
    counts = pd.crosstab(early["enrollment_id"], early["event"])
    counts["active_days"] = early.groupby("enrollment_id")["day"].nunique()
    return np.log1p(counts.reindex(logs.labels["enrollment_id"], fill_value=0))


def roc_auc(logs: SyntheticLogs, before: int) -> float:
    scores = cross_val_score(
        LogisticRegression(max_iter=1000), features(logs, before), logs.labels["label"], cv=5, scoring="roc_auc"
    )
    return float(scores.mean())


def test_frames_have_the_documented_columns_and_dtypes(logs: SyntheticLogs) -> None:
    assert list(logs.events.columns) == ["enrollment_id", "course_id", "timestamp", "event", "student_id"]
    assert logs.events["enrollment_id"].dtype == np.int64
    for column in ("course_id", "timestamp", "event"):
        assert pd.api.types.is_string_dtype(logs.events[column])
    assert logs.events["timestamp"].str.fullmatch(STAMP[1:-1]).all()
    assert set(logs.events["event"]) == set(EVENT_TYPES)
    assert list(logs.labels.columns) == ["enrollment_id", "label"]
    assert len(logs.labels) == 4 * 300
    assert set(logs.labels["label"]) == {0, 1}
    assert list(logs.calendar.columns) == ["course_id", "start"]
    assert list(logs.calendar["course_id"]) == ["C001", "C002", "C003", "C004"]
    assert list(logs.enrollments.columns) == ["enrollment_id", "course_id", "student_id"]


def test_events_come_by_enrollment_then_time_with_no_two_at_one_stamp(logs: SyntheticLogs) -> None:
    # Log readers reject repeated (entity, timestamp, type) rows as duplicates.
    events = logs.events
    assert events["enrollment_id"].is_monotonic_increasing
    assert not events.duplicated(["enrollment_id", "timestamp"]).any()
    assert events.groupby("enrollment_id")["timestamp"].apply(lambda stamps: stamps.is_monotonic_increasing).all()


def test_every_event_lies_within_its_course_window(logs: SyntheticLogs) -> None:
    day = course_day(logs)
    assert day.between(0, logs.days - 1).all()
    assert day.max() == logs.days - 1  # the window is used to its end, not just inside


def test_courses_start_a_week_apart_from_the_start_date(logs: SyntheticLogs) -> None:
    starts = pd.to_datetime(logs.calendar["start"])
    assert starts.iloc[0] == pd.Timestamp(2024, 1, 8)
    assert (starts.diff().dropna() == pd.Timedelta(days=7)).all()


def test_enrollment_ids_are_unique_across_courses_and_agree_with_the_events(logs: SyntheticLogs) -> None:
    assert list(logs.labels["enrollment_id"]) == list(range(1, 4 * 300 + 1))
    assert logs.enrollments["enrollment_id"].is_unique
    assert (logs.enrollments.groupby("course_id").size() == 300).all()
    pairs = logs.events[["enrollment_id", "course_id"]].drop_duplicates()
    merged = pairs.merge(logs.enrollments, on="enrollment_id", suffixes=("", "_listed"))
    assert len(merged) == len(pairs)
    assert (merged["course_id"] == merged["course_id_listed"]).all()


@pytest.mark.parametrize("rate", [0.3, 0.6, 0.85])
def test_dropout_share_is_near_the_requested_rate(rate: float) -> None:
    labels = generate_logs(courses=2, enrollments_per_course=1000, seed=3, dropout_rate=rate).labels
    assert labels["label"].mean() == pytest.approx(rate, abs=0.04)


def test_same_seed_gives_the_same_logs() -> None:
    first, second = (
        generate_logs(seed=5, courses=2, enrollments_per_course=100),
        generate_logs(seed=5, courses=2, enrollments_per_course=100),
    )
    for name in ("events", "labels", "calendar", "enrollments"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))


def test_different_seeds_give_different_logs() -> None:
    first, second = (
        generate_logs(seed=5, courses=2, enrollments_per_course=100),
        generate_logs(seed=6, courses=2, enrollments_per_course=100),
    )
    assert not first.events.equals(second.events)
    assert not first.labels.equals(second.labels)


def test_active_days_hold_a_realistic_number_of_events(logs: SyntheticLogs) -> None:
    per_day = logs.events.groupby([logs.events["enrollment_id"], course_day(logs)]).size()
    assert 8 <= per_day.median() <= 30  # KDD Cup 2015: 11
    assert per_day.quantile(0.99) > 5 * per_day.median()  # a heavy tail


def test_some_enrollments_never_show_any_event(logs: SyntheticLogs) -> None:
    never = 1 - logs.events["enrollment_id"].nunique() / len(logs.labels)
    assert 0.02 < never < 0.2


def test_courses_differ_in_their_mix_of_event_types() -> None:
    events = generate_logs(courses=8, enrollments_per_course=200, seed=2).events
    video = events.groupby("course_id")["event"].apply(lambda kinds: (kinds == "video").mean())
    assert video.max() > 1.5 * video.min()


def test_first_week_predicts_dropout_and_the_signal_grows_with_the_window(logs: SyntheticLogs) -> None:
    week, window = roc_auc(logs, before=7), roc_auc(logs, before=30)
    assert 0.66 <= week <= 0.82
    assert 0.84 <= window <= 0.94
    assert window > week + 0.08


def test_wide_form_has_one_row_per_enrollment_and_day_including_the_never_active(logs: SyntheticLogs) -> None:
    wide = to_wide(logs.events, logs.calendar, logs.days, enrollments=logs.enrollments)
    assert list(wide.columns) == ["enrollment_id", "course_id", "time", "student_id", *EVENT_COLUMNS]
    assert len(wide) == len(logs.enrollments) * logs.days
    assert (wide.groupby("enrollment_id")["time"].nunique() == logs.days).all()
    silent = ~logs.enrollments["enrollment_id"].isin(logs.events["enrollment_id"])
    rows = wide[wide["enrollment_id"].isin(logs.enrollments.loc[silent, "enrollment_id"])]
    assert len(rows) == silent.sum() * logs.days
    assert (rows[list(EVENT_COLUMNS)] == 0).all().all()


def test_wide_form_conserves_every_event_count(logs: SyntheticLogs) -> None:
    wide = to_wide(logs.events, logs.calendar, logs.days)
    long_counts = pd.crosstab(logs.events["enrollment_id"], "event_" + logs.events["event"])
    wide_counts = wide.groupby("enrollment_id")[list(EVENT_COLUMNS)].sum()
    pd.testing.assert_frame_equal(
        wide_counts, long_counts.reindex(columns=list(EVENT_COLUMNS), fill_value=0), check_names=False
    )


def test_wide_form_counts_each_event_on_its_own_day(logs: SyntheticLogs) -> None:
    wide = to_wide(logs.events, logs.calendar, logs.days).set_index(["enrollment_id", "time"])
    per_day = logs.events.groupby([logs.events["enrollment_id"], logs.events["timestamp"].str.slice(0, 10)]).size()
    summed = wide[list(EVENT_COLUMNS)].sum(axis=1)
    assert (summed.loc[per_day.index] == per_day.to_numpy()).all()
    assert summed.sum() == len(logs.events)


@pytest.mark.parametrize(
    ("column", "change"),
    [
        ("timestamp", lambda e: e.assign(timestamp="2024-01-08 10:00")),
        ("timestamp", lambda e: e.assign(timestamp="2031-01-01T10:00:00")),
        ("course_id", lambda e: e.assign(course_id="C999")),
        ("event", lambda e: e.assign(event="click")),
        ("enrollment_id", lambda e: e.assign(enrollment_id=10**9)),
    ],
)
def test_wide_form_rejects_events_it_cannot_place(
    logs: SyntheticLogs, column: str, change: Callable[[pd.DataFrame], pd.DataFrame]
) -> None:
    events = logs.events.head(20).copy()
    events.iloc[3:5] = change(events.iloc[3:5].copy())
    with pytest.raises(DataValidationError) as caught:
        to_wide(events, logs.calendar, logs.days, enrollments=logs.enrollments)
    assert [issue.column for issue in caught.value.issues] == [column]
    assert caught.value.issues[0].count == 2


def test_wide_form_rejects_an_enrollment_in_two_courses(logs: SyntheticLogs) -> None:
    enrollments = pd.concat([logs.enrollments, pd.DataFrame({"enrollment_id": [1], "course_id": ["C002"]})])
    with pytest.raises(DataValidationError, match="enrollment_id: in two courses"):
        to_wide(logs.events, logs.calendar, logs.days, enrollments=enrollments)


def test_wide_form_names_a_missing_column(logs: SyntheticLogs) -> None:
    with pytest.raises(DataValidationError, match="timestamp: missing from the events"):
        to_wide(logs.events.drop(columns="timestamp"), logs.calendar, logs.days)


def test_write_logs_writes_the_long_form_and_reads_back_equal(logs: SyntheticLogs, tmp_path: Path) -> None:
    paths = write_logs(logs, tmp_path)
    assert sorted(paths) == ["calendar", "enrollments", "events", "labels"]
    pd.testing.assert_frame_equal(pd.read_csv(paths["events"]), logs.events, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_csv(paths["labels"]), logs.labels)


def test_write_logs_wide_writes_one_kdd_like_file_per_course(logs: SyntheticLogs, tmp_path: Path) -> None:
    paths = write_logs(logs, tmp_path, wide=True)
    assert "events" not in paths
    wide = to_wide(logs.events, logs.calendar, logs.days, enrollments=logs.enrollments)
    for course_id in logs.calendar["course_id"]:
        written = pd.read_csv(paths[f"course_{course_id}"])
        assert list(written.columns) == ["enrollment_id", "time", "student_id", *EVENT_COLUMNS]
        expected = wide[wide["course_id"] == course_id].drop(columns="course_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(written, expected, check_dtype=False)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("courses", 0), ("enrollments_per_course", 0), ("days", 0), ("dropout_rate", 1.0), ("dropout_rate", 0.0)],
)
def test_generate_logs_rejects_bad_arguments_by_name(argument: str, value: float) -> None:
    with pytest.raises(ValueError, match=argument):
        generate_logs(**{argument: value})


def test_a_start_given_as_datetime_still_gives_plain_dates() -> None:
    logs = generate_logs(courses=2, enrollments_per_course=20, start=datetime(2024, 3, 4, 15, 30))
    assert list(logs.calendar["start"]) == ["2024-03-04", "2024-03-11"]
    assert logs.events["timestamp"].str.fullmatch(STAMP[1:-1]).all()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    courses=st.integers(1, 3),
    per_course=st.integers(1, 15),
    days=st.integers(1, 12),
    rate=st.floats(0.05, 0.95),
    start=st.dates(date(2000, 1, 1), date(2090, 1, 1)),
)
def test_invariants_hold_for_any_seed_and_size(
    seed: int, courses: int, per_course: int, days: int, rate: float, start: date
) -> None:
    logs = generate_logs(
        courses=courses, enrollments_per_course=per_course, days=days, seed=seed, dropout_rate=rate, start=start
    )
    assert len(logs.labels) == len(logs.enrollments) == courses * per_course
    assert logs.events["enrollment_id"].isin(logs.labels["enrollment_id"]).all()
    assert not logs.events.duplicated(["enrollment_id", "timestamp"]).any()
    assert course_day(logs).between(0, days - 1).all()
    wide = to_wide(logs.events, logs.calendar, days, enrollments=logs.enrollments)
    assert len(wide) == courses * per_course * days
    assert int(wide[list(EVENT_COLUMNS)].to_numpy().sum()) == len(logs.events)
    again = generate_logs(
        courses=courses, enrollments_per_course=per_course, days=days, seed=seed, dropout_rate=rate, start=start
    )
    pd.testing.assert_frame_equal(logs.events, again.events)


def test_students_take_several_courses_and_their_enrollments_share_their_fate() -> None:
    logs = generate_logs(courses=5, enrollments_per_course=400, seed=4)
    enrolled = logs.enrollments.merge(logs.labels, on="enrollment_id")
    per_student = enrolled.groupby("student_id")
    assert not enrolled.duplicated(["student_id", "course_id"]).any()  # one enrollment per course
    several = per_student["course_id"].transform("size") > 1
    assert 0.2 < several.mean() < 0.8
    # A student's enrollments share most of their engagement: their outcomes agree more often
    # than two enrollments drawn at random do.
    pairs = enrolled[several].sort_values(["student_id", "course_id"])
    first, second = pairs.groupby("student_id")["label"].nth(0), pairs.groupby("student_id")["label"].nth(1)
    agree = (first.to_numpy() == second.to_numpy()).mean()
    rate = enrolled["label"].mean()
    assert agree > rate**2 + (1 - rate) ** 2 + 0.05
    events = logs.events.merge(logs.enrollments, on=["enrollment_id", "course_id"], suffixes=("", "_listed"))
    assert (events["student_id"] == events["student_id_listed"]).all()
