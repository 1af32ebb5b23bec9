"""``ccml data logs``, ``features``, ``train --logs``, ``horizons`` and ``score`` on synthetic logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from ccml.cli import app
from ccml.core.activity import load_activity_schema

FAST = json.dumps({"max_iter": 60})


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CCML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CCML_TRAINER", "hist_gradient_boosting")
    monkeypatch.setenv("CCML_TRAINER_PARAMS", FAST)
    monkeypatch.setenv("CCML_LOG_LEVEL", "warning")
    monkeypatch.delenv("CCML_SCHEMA", raising=False)
    return tmp_path


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def fail(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 1, result.output
    return result.stderr


@pytest.fixture
def logs(env: Path) -> Path:
    out = env / "logs"
    run("data", "logs", "--out", str(out), "--courses", "3", "--per-course", "200", "--seed", "3")
    return out


def inputs(logs: Path) -> list[str]:
    return [
        "--logs",
        str(logs / "events.csv"),
        "--labels",
        str(logs / "labels.csv"),
        "--enrollments",
        str(logs / "enrollments.csv"),
    ]


def test_features_writes_the_labelled_table_as_of_each_day(logs: Path, env: Path) -> None:
    out = env / "features.parquet"
    summary = run("features", *inputs(logs), "--day", "7,14", "--out", str(out), "--json")
    table = pd.read_parquet(out) if _has_arrow() else None
    enrolled = len(pd.read_csv(logs / "enrollments.csv"))
    assert summary["rows"] == 2 * enrolled
    assert summary["days"] == [7, 14]
    csv = env / "features.csv"
    run("features", *inputs(logs), "--day", "14", "--out", str(csv))
    frame = pd.read_csv(csv)
    assert len(frame) == enrolled
    assert set(frame["label"]) == {0, 1}
    assert (frame["day"] == 14).all()
    if table is not None:
        assert len(table) == 2 * enrolled


def _has_arrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def test_train_gates_each_horizon_against_its_own_alias(logs: Path) -> None:
    first = run("train", *inputs(logs), "--day", "7", "--json")
    assert first["promoted"] is True
    assert (first["day"], first["alias"]) == (7, "day-7")
    later = run("train", *inputs(logs), "--day", "21", "--json")
    assert later["alias"] == "day-21"
    assert later["champion_version"] is None  # day 21 is not compared with day 7's model
    again = run("train", *inputs(logs), "--day", "7", "--json")
    assert again["champion_version"] == first["version"]
    listed = {v["version"]: v["aliases"] for v in run("models", "list", "--json")}
    assert "day-21" in listed[later["version"]]


def test_train_refuses_a_day_past_the_course_and_a_missing_day(logs: Path) -> None:
    assert "past the course's 30 days" in fail("train", *inputs(logs), "--day", "31")
    assert "--logs needs --day" in fail("train", *inputs(logs))
    assert "not both" in fail("train", *inputs(logs), "--day", "7", "--data", "x.csv")


def test_horizons_prints_one_row_per_day_and_writes_the_plot(logs: Path, env: Path) -> None:
    png = env / "h.png"
    report = run("horizons", *inputs(logs), "--days", "7,21", "--cv", "3", "--png", str(png), "--json")
    rows = report["horizons"]
    assert [r["day"] for r in rows] == [7, 21]
    assert set(rows[0]) >= {"roc_auc", "roc_auc_std", "pr_auc", "precision_top10"}
    assert 0.6 < rows[0]["roc_auc"] < rows[1]["roc_auc"] <= 1.0  # later days know more
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grouped = run(
        "horizons", *inputs(logs), "--days", "14", "--cv", "3", "--group-by", "course", "--png", str(png), "--json"
    )
    assert grouped["folds"] == "3-fold, grouped by course"
    by_student = run(
        "horizons", *inputs(logs), "--days", "14", "--cv", "3", "--group-by", "student", "--png", str(png), "--json"
    )
    assert by_student["folds"] == "3-fold, grouped by student"
    assert 0.5 < by_student["horizons"][0]["roc_auc"] <= 1.0
    assert "takes course or student" in fail("horizons", *inputs(logs), "--group-by", "week", "--png", str(png))
    text = run("horizons", *inputs(logs), "--days", "14", "--cv", "3", "--png", str(png))
    assert "roc_auc" in text.splitlines()[0]


def test_score_ranks_every_enrollment_of_every_course_with_the_right_horizon(logs: Path, env: Path) -> None:
    run("train", *inputs(logs), "--day", "7")
    run("train", *inputs(logs), "--day", "14")
    out = env / "risk.csv"
    enrolled = pd.read_csv(logs / "enrollments.csv")
    summary = run(
        "score",
        "--logs",
        str(logs / "events.csv"),
        "--enrollments",
        str(logs / "enrollments.csv"),
        "--day",
        "10",
        "--out",
        str(out),
        "--json",
    )
    ranked = pd.read_csv(out)
    assert summary["horizons"] == [7, 14]
    assert len(ranked) == len(enrolled)
    features = set(load_activity_schema().feature_schema().feature_names)
    for line in ranked["top_factors"]:  # each prediction's 3 largest factors
        factors = line.split("; ")
        assert 0 < len(factors) <= 3
        assert {factor.split("=", 1)[0] for factor in factors} <= features
    assert (ranked["horizon"] == 7).all()  # day 10: the latest horizon at or before it
    for _, course in ranked.groupby("course"):
        assert list(course["risk_rank"]) == list(range(1, len(course) + 1))
        assert course["completion_probability"].is_monotonic_increasing
    current = run(
        "score", "--logs", str(logs / "events.csv"), *inputs(logs)[4:], "--out", str(env / "now.csv"), "--json"
    )
    assert set(current["courses"].values()) == {30}  # the logs run to each course's last day
    now = pd.read_csv(env / "now.csv")
    assert set(now["horizon"]) == {14}
    # By the course's end, the enrollments never seen in the log are among the most at risk.
    silent = now[~now["enrollment_id"].isin(pd.read_csv(logs / "events.csv")["enrollment_id"])]
    assert len(silent) > 0
    assert silent["risk_rank"].median() < now["risk_rank"].median()


def test_score_without_a_horizon_model_says_what_to_do(logs: Path, env: Path) -> None:
    assert "ccml train --logs" in fail("score", "--logs", str(logs / "events.csv"), "--out", str(env / "r.csv"))


def test_the_printed_sql_run_elsewhere_and_its_aggregates_give_the_same_table(logs: Path, env: Path) -> None:
    import duckdb

    statements = run("sql", "--dialect", "duckdb", "--day", "7,14", "--enrollments")
    events, problems, features = [s.split("\n", 1)[1] for s in statements.strip().rstrip(";").split(";\n\n")]
    con = duckdb.connect()  # "elsewhere": a plain DuckDB session over the same files
    log_file, listed = logs / "events.csv", logs / "enrollments.csv"
    reader = f"read_csv('{log_file}', all_varchar = true, filename = true)"
    con.execute(f"CREATE VIEW ccml_logs AS SELECT *, filename AS ccml_file FROM {reader}")
    entity = "CAST(enrollment_id AS VARCHAR) AS entity, course_id AS course, student_id AS student"
    con.execute(f"CREATE TABLE ccml_enrollments AS SELECT {entity} FROM read_csv('{listed}')")
    con.execute(events.replace("CREATE TABLE ccml_events AS\n", "CREATE TABLE ccml_events AS "))
    assert all(n == 0 for _, n, _ in con.execute(problems).fetchall())
    aggregates = env / "aggregates.csv"
    con.execute(f"COPY ({features}) TO '{aggregates}' (HEADER)")
    run("features", "--aggregates", str(aggregates), "--day", "14", "--out", str(env / "elsewhere.csv"))
    run(
        "features",
        "--logs",
        str(logs / "events.csv"),
        "--enrollments",
        str(logs / "enrollments.csv"),
        "--day",
        "14",
        "--out",
        str(env / "here.csv"),
    )
    pd.testing.assert_frame_equal(pd.read_csv(env / "elsewhere.csv"), pd.read_csv(env / "here.csv"))
    athena = run("sql", "--day", "14")
    assert "from_iso8601_timestamp" in athena
    assert "CREATE TABLE ccml_events AS" in athena
