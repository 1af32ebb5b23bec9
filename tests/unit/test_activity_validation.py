"""A bad log or labels file is one report of every problem, and nothing is computed from it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ccml.activity.aggregation import aggregate
from ccml.activity.engines import DuckDBEngine
from ccml.activity.labels import join_labels
from ccml.core.activity import ActivitySchema, load_activity_schema
from ccml.core.errors import DataValidationError, SchemaError

LONG = load_activity_schema()
KDD = Path(__file__).resolve().parents[2] / "examples" / "schemas" / "kddcup2015-logs.toml"

GOOD = [
    ("1", "C1", "2024-01-08T10:00:00", "video"),
    ("1", "C1", "2024-01-09T10:00:00", "problem"),
    ("2", "C1", "2024-01-08T11:00:00", "access"),
    ("3", "C2", "2024-01-10T09:30:00", "wiki"),
]


def write(tmp: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    path = tmp / "events.csv"
    frame = pd.DataFrame(rows, columns=["enrollment_id", "course_id", "timestamp", "event"])
    frame["student_id"] = "S" + frame["enrollment_id"]
    frame.to_csv(path, index=False)
    return path


def problems(tmp: Path, rows: list[tuple[str, str, str, str]], schema: ActivitySchema = LONG) -> list[str]:
    with pytest.raises(DataValidationError) as caught:
        aggregate(DuckDBEngine(), schema, [write(tmp, rows)], [7])
    return [issue.describe() for issue in caught.value.issues]


def test_a_clean_log_aggregates(tmp_path: Path) -> None:
    table = aggregate(DuckDBEngine(), LONG, [write(tmp_path, GOOD)], [7]).table
    assert sorted(table["enrollment_id"]) == ["1", "2", "3"]
    assert table.set_index("enrollment_id").loc["1", "n_events"] == 2


def test_every_problem_of_a_log_is_reported_at_once(tmp_path: Path) -> None:
    bad = [
        *GOOD,
        ("4", "C1", "yesterday", "video"),  # unparsable timestamp
        ("", "C1", "2024-01-08T12:00:00", "video"),  # no entity
        ("5", "", "2024-01-08T12:00:00", "video"),  # no course
        ("1", "C1", "2024-01-08T10:00:00", "video"),  # the first event again
    ]
    found = problems(tmp_path, bad)
    assert len(found) == 4, found
    assert any("unparsable or missing timestamp (e.g. yesterday) x1" in p for p in found)
    assert any("missing entity id" in p for p in found)
    assert any("missing or unmatched course" in p for p in found)
    assert any("duplicate events" in p for p in found)


def test_negative_and_non_numeric_counts_of_a_wide_log_are_reported(tmp_path: Path) -> None:
    schema = load_activity_schema(KDD)
    path = tmp_path / "trainCourse42.csv"
    header = "enrollment_id,time," + ",".join(schema.logs.events)
    path.write_text(
        f"{header}\n1,2014-05-25,1,0,0,0,0,0,0\n1,2014-05-26,-3,0,0,0,0,0,0\n2,2014-05-25,x,0,0,0,0,0,0\n"
        "2,2014-05-25,1,0,0,0,0,0,0\n2,2014-05-25,2,0,0,0,0,0,0\n"
    )
    with pytest.raises(DataValidationError) as caught:
        aggregate(DuckDBEngine(), schema, [path], [7])
    report = str(caught.value)
    assert "count that is not a whole number >= 0 (e.g. 1) x2" in report  # -3 and x
    assert "duplicate days" in report


def test_declared_columns_missing_from_the_log_are_named(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    pd.DataFrame(GOOD, columns=["enrollment_id", "course_id", "timestamp", "kind"]).to_csv(path, index=False)
    with pytest.raises(DataValidationError) as caught:
        aggregate(DuckDBEngine(), LONG, [path], [7])
    assert sorted(i.column for i in caught.value.issues) == ["event", "student_id"]
    assert "declared column is missing from the log" in str(caught.value)


def test_an_enrollment_of_two_students_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    frame = pd.read_csv(path, dtype=str)
    frame.loc[1, "student_id"] = "S-other"  # enrollment 1's second event names another student
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="entity of more than one student"):
        aggregate(DuckDBEngine(), LONG, [path], [7])


def test_a_file_name_the_course_pattern_does_not_match_is_reported(tmp_path: Path) -> None:
    schema = load_activity_schema(KDD)
    path = tmp_path / "other.csv"
    path.write_text("enrollment_id,time," + ",".join(schema.logs.events) + "\n1,2014-05-25,1,0,0,0,0,0,0\n")
    with pytest.raises(DataValidationError, match="missing or unmatched course"):
        aggregate(DuckDBEngine(), schema, [path], [7])


def test_labels_without_logs_and_logs_without_labels_are_errors_by_default(tmp_path: Path) -> None:
    table = aggregate(DuckDBEngine(), LONG, [write(tmp_path, GOOD)], [7]).table
    labels = pd.DataFrame({"enrollment_id": ["1", "2", "9", "2"], "label": ["0", "1", "1", "1"]})
    with pytest.raises(DataValidationError) as caught:
        join_labels(LONG, table, labels)
    report = str(caught.value)
    assert "labelled more than once (e.g. 2)" in report
    assert "labelled entity with no event in the log (give the enrollments) (e.g. 9) x1" in report
    assert "entity in the log without a label (e.g. 3) x1" in report


def test_unmatched_labels_may_be_dropped_by_the_declaration(tmp_path: Path) -> None:
    lenient = ActivitySchema.from_dict(
        {
            **LONG.model_dump(mode="json"),
            "labels": {
                **LONG.labels.model_dump(mode="json"),
                "labels_without_logs": "drop",
                "logs_without_labels": "drop",
            },
        }
    )
    table = aggregate(DuckDBEngine(), lenient, [write(tmp_path, GOOD)], [7]).table
    joined = join_labels(lenient, table, pd.DataFrame({"enrollment_id": ["1", "2", "9"], "label": ["0", "1", "1"]}))
    assert sorted(joined["enrollment_id"]) == ["1", "2"]
    assert list(joined.set_index("enrollment_id").loc[["1", "2"], "label"]) == ["0", "1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"logs": {"format": "long"}}, "event_column"),
        ({"logs": {"course_column": None}}, "exactly one of course_column and course_from_filename"),
        ({"logs": {"course_column": None, "course_from_filename": "x(.*)"}}, "named group"),
        ({"horizons": [7, 45]}, "past the course's 30 days"),
    ],
)
def test_a_bad_declaration_names_the_problem(change: dict, message: str) -> None:
    data = LONG.model_dump(mode="json")
    for table, values in change.items():
        if isinstance(values, dict):
            data[table] = {k: v for k, v in {**data[table], **values}.items() if v is not None}
            if "format" in values:
                data[table].pop("event_column", None)
        else:
            data[table] = values
    with pytest.raises(SchemaError, match=message):
        ActivitySchema.from_dict(data)
