"""Logs drops: a batch folder of activity logs under ``incoming/logs/<batch>/`` trains when its
``_READY`` marker lands, one version per course day promoted to ``day-D``, once per (marker, day).

In process against ``mock_aws`` (``EventRetrainer.handle``, as the handler and the CLI call it), and
end to end against moto's HTTP server: the Lambda handler and ``ccml retrain --event``.
Each batch is small (3 courses x 120 enrollments), so each day's version trains in a fraction of a second.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from structlog.testing import capture_logs

import handlers.retrain
from ccml.activity.event_logs import MARKER, WAITING
from ccml.activity.synthetic import SyntheticLogs, generate_logs
from ccml.core.activity import load_activity_schema
from ccml.core.errors import CcmlError, DataSourceError, DataValidationError, EventError
from ccml.core.events import parse_event
from ccml.models.training.event_retraining import EventRetrainer, build_event_retrainer
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.s3 import S3ModelStore, make_client
from tests.s3.helpers import (
    FakeLambdaContext,
    s3_event,
    s3_record,
    s3_settings,
    store_for,
    student_frame,
    upload_csv,
    version_ids,
)
from tests.s3.test_cli import ccml, json_out

BATCH = "2024-06-03"
SAMPLE_EVENT = Path(__file__).resolve().parents[2] / "examples" / "events" / "logs" / "s3-put-ready.json"
HORIZONS = load_activity_schema().horizons  # the built-in activity schema's, what an empty marker trains
# 360 enrollments leave 72 holdout rows: a first week's model scores anywhere around 0.6-0.8 there,
# so the gate's floor is lowered to what these tests are about (the drop, not the model's quality).
FLOOR = 0.5


@functools.cache
def synthetic_logs(seed: int) -> SyntheticLogs:
    """Three courses of 120 enrollments: small enough to train a handful of versions in seconds."""
    return generate_logs(courses=3, enrollments_per_course=120, seed=seed)


def batch_objects(seed: int, *, broken: bool = False, parquet: bool = False) -> dict[str, bytes]:
    """The files of a batch by name: a long log (CSV or Parquet), labels, calendar and enrollments."""
    logs = synthetic_logs(seed)
    events = logs.events.astype({"timestamp": str})
    if broken:  # unparsable timestamps: a validation problem of the log itself
        events.loc[events.index[:5], "timestamp"] = "last tuesday"
    companions = {"labels.csv": logs.labels, "calendar.csv": logs.calendar, "enrollments.csv": logs.enrollments}
    objects = {name: frame.to_csv(index=False).encode() for name, frame in companions.items()}
    if parquet:
        objects["events.parquet"] = parquet_bytes(events)
    else:
        objects["events.csv"] = events.to_csv(index=False).encode()
    return objects


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    # DuckDB writes Parquet (pandas would need pyarrow, which ccml does not depend on).
    with tempfile.TemporaryDirectory() as work, duckdb.connect() as con:
        path = Path(work) / "events.parquet"
        con.register("frame", frame)
        con.execute(f"COPY frame TO '{path}' (FORMAT parquet)")
        return path.read_bytes()


def announce(bucket: str, key: str, response: dict[str, Any]) -> dict[str, Any]:
    """S3's notification record of an upload, with its version id where the bucket keeps versions."""
    record = s3_record(bucket, key, str(response["ETag"]))
    if response.get("VersionId"):
        record["s3"]["object"]["versionId"] = response["VersionId"]
    return record


def upload_batch(bucket: str, objects: dict[str, bytes], batch: str = BATCH) -> list[dict[str, Any]]:
    """Upload a batch's files; return their notification records."""
    s3 = make_client()
    records = []
    for name, body in objects.items():
        key = f"incoming/logs/{batch}/{name}"
        records.append(announce(bucket, key, dict(s3.put_object(Bucket=bucket, Key=key, Body=body))))
    return records


def upload_marker(bucket: str, body: bytes = b"", batch: str = BATCH) -> dict[str, Any]:
    key = f"incoming/logs/{batch}/{MARKER}"
    return announce(bucket, key, dict(make_client().put_object(Bucket=bucket, Key=key, Body=body)))


def table_record(bucket: str, key: str = "incoming/students.csv") -> dict[str, Any]:
    return s3_record(bucket, key, upload_csv(bucket, key, student_frame(1)))


def retrainer(bucket: str) -> EventRetrainer:
    return build_event_retrainer(s3_settings(bucket, promotion_floor=FLOOR))


def days_of(results: list[dict[str, Any]]) -> list[tuple[str, int, str, str]]:
    return [(r["batch"], r["day"], r["alias"], r["status"]) for r in results if "day" in r]


def horizon_champions(store: S3ModelStore, days: list[int]) -> dict[int, str | None]:
    return {day: (record.version if (record := store.alias(f"day-{day}")) else None) for day in days}


# -- a batch and its marker --------------------------------------------------------------
def test_marker_trains_a_version_per_day_promoted_to_its_horizon_and_the_batch_waits(mock_bucket: str) -> None:
    records = upload_batch(mock_bucket, batch_objects(1))
    marker = upload_marker(mock_bucket, b'{"days": [14, 7]}')

    with capture_logs() as logs:
        summary = retrainer(mock_bucket).handle(s3_event(*records, marker))

    results = summary["results"]
    waiting = results[: len(records)]
    assert [(r["object"], r["status"], r["reason"]) for r in waiting] == [
        (f"s3://{mock_bucket}/{r['s3']['object']['key']}", "skipped", WAITING) for r in records
    ]
    assert sum(entry["event"] == "event_skipped" and entry["reason"] == WAITING for entry in logs) == len(records)
    trained = results[len(records) :]
    assert days_of(trained) == [(BATCH, 7, "day-7", "trained"), (BATCH, 14, "day-14", "trained")]
    assert {r["object"] for r in trained} == {f"s3://{mock_bucket}/incoming/logs/{BATCH}/{MARKER}"}
    store = store_for(mock_bucket)
    assert sorted(version_ids(store)) == sorted(r["version"] for r in trained)
    features = load_activity_schema().feature_schema()
    for result in trained:
        assert result["promoted"] is True
        assert store.resolve(result["alias"]) == result["version"]
        manifest = store.manifest(result["version"])
        assert manifest.schema_fingerprint == features.fingerprint()
        assert manifest.data.source["location"] == f"s3://{mock_bucket}/incoming/logs/{BATCH}/"
        assert manifest.data.source["day"] == str(result["day"])
        assert manifest.data.rows_used == len(synthetic_logs(1).labels)  # enrollments without events included
    assert store.alias("champion") is None  # the table model's alias is another one


@pytest.mark.parametrize("parquet", [False, True], ids=["csv", "parquet"])
def test_redelivered_marker_reports_already_processed_and_trains_nothing(mock_bucket: str, parquet: bool) -> None:
    upload_batch(mock_bucket, batch_objects(2, parquet=parquet))
    event = s3_event(upload_marker(mock_bucket, b'{"days": [7]}'))
    [first] = retrainer(mock_bucket).handle(event)["results"]

    [again] = retrainer(mock_bucket).handle(event)["results"]

    assert (first["status"], first["alias"]) == ("trained", "day-7")
    assert (again["status"], again["version"], again["day"]) == ("already processed", first["version"], 7)
    assert version_ids(store_for(mock_bucket)) == [first["version"]]


def test_a_crash_mid_batch_retrains_only_the_days_not_done(mock_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upload_batch(mock_bucket, batch_objects(3))
    event = s3_event(upload_marker(mock_bucket, b'{"days": [7, 14, 21]}'))
    run = RetrainWorkflow.run
    runs: list[str] = []

    def crashing_at_day_14(self: RetrainWorkflow, *args: Any, **kwargs: Any) -> Any:
        runs.append(self.alias)
        if self.alias == "day-14" and runs.count("day-14") == 1:
            raise CcmlError("the container died")
        return run(self, *args, **kwargs)

    monkeypatch.setattr(RetrainWorkflow, "run", crashing_at_day_14)
    with pytest.raises(CcmlError, match="the container died"):
        retrainer(mock_bucket).handle(event)
    store = store_for(mock_bucket)
    assert horizon_champions(store, [7, 14, 21]) == {7: version_ids(store)[0], 14: None, 21: None}

    results = retrainer(mock_bucket).handle(event)["results"]

    assert [(r["day"], r["status"]) for r in results] == [(7, "already processed"), (14, "trained"), (21, "trained")]
    assert runs == ["day-7", "day-14", "day-14", "day-21"]
    assert sorted(version_ids(store)) == sorted(r["version"] for r in results)


def test_table_csv_under_incoming_still_trains_the_champion_beside_a_logs_batch(mock_bucket: str) -> None:
    table = table_record(mock_bucket)
    upload_batch(mock_bucket, batch_objects(5))

    table_result, day_result = retrainer(mock_bucket).handle(
        s3_event(table, upload_marker(mock_bucket, b'{"days": [7]}'))
    )["results"]

    store = store_for(mock_bucket)
    assert (table_result["status"], "day" in table_result) == ("trained", False)
    assert store.resolve("champion") == table_result["version"]
    assert store.resolve("day-7") == day_result["version"] != table_result["version"]
    assert (
        store.manifest(table_result["version"]).data.source["location"] == f"s3://{mock_bucket}/incoming/students.csv"
    )


# -- what a marker may say ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"days: 7", "Invalid JSON"),
        (b"[7, 14]", "Input should be an object"),
        (b'{"days": []}', "days: List should have at least 1 item"),
        (b'{"days": [7, "14"]}', "days.1: Input should be a valid integer"),
        (b'{"days": [0]}', "days.0: Input should be greater than or equal to 1"),
        (b'{"days": [7, 45]}', "days [45] lie past the course's 30 days"),
        (b'{"day": [7]}', "day: Extra inputs are not permitted"),
    ],
)
def test_bad_marker_is_an_event_error_naming_the_problem_and_nothing_trains(
    mock_bucket: str, body: bytes, problem: str
) -> None:
    table = table_record(mock_bucket)
    upload_batch(mock_bucket, batch_objects(6))

    # The table comes first in the event, yet nothing trains: every marker is read before anything does.
    with pytest.raises(
        EventError, match=f"logs marker s3://{mock_bucket}/incoming/logs/{BATCH}/_READY: .*{re.escape(problem)}"
    ):
        retrainer(mock_bucket).handle(s3_event(table, upload_marker(mock_bucket, body)))

    assert version_ids(store_for(mock_bucket)) == []


def test_empty_or_blank_marker_asks_for_every_horizon_of_the_schema(mock_bucket: str) -> None:
    [marker] = parse_event(s3_event(upload_marker(mock_bucket, b" \n"))).objects

    plan = retrainer(mock_bucket).plan(marker)

    assert [(t.summary["day"], t.alias) for t in plan.trainings] == [(d, f"day-{d}") for d in sorted(HORIZONS)]
    assert {t.identity for t in plan.trainings} == {f"{marker.identity}#day={d}" for d in HORIZONS}


# -- batches that must not train ---------------------------------------------------------
def test_broken_log_trains_nothing_and_leaves_the_horizon_champions(mock_bucket: str) -> None:
    upload_batch(mock_bucket, batch_objects(7), batch="good")
    [good] = retrainer(mock_bucket).handle(s3_event(upload_marker(mock_bucket, b'{"days": [7]}', batch="good")))[
        "results"
    ]
    upload_batch(mock_bucket, batch_objects(8, broken=True), batch="broken")
    event = s3_event(upload_marker(mock_bucket, b'{"days": [7, 14]}', batch="broken"))

    with pytest.raises(DataValidationError, match="unparsable or missing timestamp"):
        retrainer(mock_bucket).handle(event)

    store = store_for(mock_bucket)
    assert version_ids(store) == [good["version"]]
    assert horizon_champions(store, [7, 14]) == {7: good["version"], 14: None}
    # The day's claim failed rather than completed: a retry reads the batch again (and fails again).
    with pytest.raises(DataValidationError):
        retrainer(mock_bucket).handle(event)


@pytest.mark.parametrize(
    ("removed", "added", "problem"),
    [
        ("labels.csv", {}, "takes labels from a file: upload labels.csv"),
        ("", {"notes.txt": b"hi"}, "neither log files .* nor .*: notes.txt"),
        ("", {"old/events.csv": b"x"}, "nor .*: old/events.csv"),
        ("events.csv", {}, "holds no log file"),
    ],
    ids=["no labels", "unknown object", "subfolder", "no log"],
)
def test_batch_layout_problems_are_named_and_nothing_trains(
    mock_bucket: str, removed: str, added: dict[str, bytes], problem: str
) -> None:
    objects = {name: body for name, body in batch_objects(9).items() if name != removed} | added
    upload_batch(mock_bucket, objects)

    with pytest.raises(DataSourceError, match=f"logs batch s3://{mock_bucket}/incoming/logs/{BATCH}/.*{problem}"):
        retrainer(mock_bucket).handle(s3_event(upload_marker(mock_bucket, b'{"days": [7]}')))

    assert version_ids(store_for(mock_bucket)) == []


@pytest.mark.parametrize("key", ["incoming/logs/events.csv", f"incoming/logs/{MARKER}"])
def test_logs_outside_a_batch_folder_are_skipped(mock_bucket: str, key: str) -> None:
    record = announce(mock_bucket, key, dict(make_client().put_object(Bucket=mock_bucket, Key=key, Body=b"x")))

    [result] = retrainer(mock_bucket).handle(s3_event(record))["results"]

    assert result["status"] == "skipped"
    assert "not in a logs batch folder: incoming/logs/<batch>/" in result["reason"]


# -- end to end on moto's server ---------------------------------------------------------
@pytest.mark.integration
def test_lambda_trains_every_horizon_on_an_empty_marker_then_the_cli_reports_it_done(
    server_bucket: str, lambda_env: Any, tmp_path: Path
) -> None:
    make_client().put_bucket_versioning(Bucket=server_bucket, VersioningConfiguration={"Status": "Enabled"})
    upload_batch(server_bucket, batch_objects(10))
    event = s3_event(upload_marker(server_bucket))
    assert event["Records"][0]["s3"]["object"]["versionId"]
    lambda_env(server_bucket, promotion_floor=FLOOR)

    results = handlers.retrain.handler(event, FakeLambdaContext())["results"]

    assert days_of(results) == [(BATCH, day, f"day-{day}", "trained") for day in sorted(HORIZONS)]
    store = store_for(server_bucket)
    assert horizon_champions(store, sorted(HORIZONS)) == {r["day"]: r["version"] for r in results}
    # The container task runs the same code, and shares the claims.
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event), "utf-8")

    again = json_out(ccml("retrain", "--event", str(event_file), "--json", bucket=server_bucket, cwd=tmp_path))

    assert [(r["day"], r["status"], r["version"]) for r in again["results"]] == [
        (r["day"], "already processed", r["version"]) for r in results
    ]
    assert sorted(version_ids(store)) == sorted(r["version"] for r in results)


def test_sample_ready_event_trains_the_demo_batch(mock_s3: None, lambda_env: Any) -> None:
    # The README's example: an empty marker's ETag is the MD5 of nothing, so the sample matches the upload.
    make_client().create_bucket(Bucket="ccml-demo")
    upload_batch("ccml-demo", batch_objects(11))
    uploaded = upload_marker("ccml-demo")
    event = json.loads(SAMPLE_EVENT.read_text("utf-8"))
    assert [parse_event(event).objects[0].identity] == [o.identity for o in parse_event(s3_event(uploaded)).objects]
    lambda_env("ccml-demo", promotion_floor=FLOOR)

    results = handlers.retrain.handler(event, FakeLambdaContext())["results"]

    assert days_of(results) == [(BATCH, day, f"day-{day}", "trained") for day in sorted(HORIZONS)]
