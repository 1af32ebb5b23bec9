"""The container-task path: ``ccml retrain --event`` and ``ccml train --data s3://`` as real
processes against moto's HTTP server, configured only through the environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import handlers.retrain
from ccml.cli import app
from tests.s3.helpers import (
    AWKWARD_KEY,
    CCML_SCRIPT,
    FAST_TRAINER,
    FakeLambdaContext,
    s3_event,
    s3_record,
    store_for,
    student_frame,
    upload_csv,
    version_ids,
)


def ccml(*args: str, bucket: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the console script with the S3 settings in its environment (AWS_ENDPOINT_URL included)."""
    env = {
        **os.environ,
        "CCML_STORAGE": "s3",
        "CCML_S3_BUCKET": bucket,
        "CCML_MIN_ROWS": "50",
        "CCML_TRAINER_PARAMS": json.dumps(FAST_TRAINER),
        "CCML_LOG_FORMAT": "json",
    }
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    return subprocess.run(
        [str(CCML_SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def json_out(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.integration
def test_retrain_event_file_trains_and_the_lambda_then_reports_it_already_processed(
    server_bucket: str, tmp_path: Path, lambda_env: Any
) -> None:
    etag = upload_csv(server_bucket, AWKWARD_KEY, student_frame(1))
    event = s3_event(s3_record(server_bucket, AWKWARD_KEY, etag))
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event), "utf-8")

    summary = json_out(ccml("retrain", "--event", str(event_file), "--json", bucket=server_bucket, cwd=tmp_path))

    [result] = summary["results"]
    assert result["object"] == f"s3://{server_bucket}/{AWKWARD_KEY}"
    assert (result["status"], result["promoted"]) == ("trained", True)
    store = store_for(server_bucket)
    assert version_ids(store) == [result["version"]]
    assert store.resolve("champion") == result["version"]
    # The container task and the Lambda share one claim per object: the same event reaching
    # the handler afterwards trains nothing.
    lambda_env(server_bucket)
    [again] = handlers.retrain.handler(event, FakeLambdaContext())["results"]
    assert (again["status"], again["version"]) == ("already processed", result["version"])
    assert version_ids(store) == [result["version"]]


@pytest.mark.integration
def test_train_from_an_s3_uri_saves_and_promotes_a_version(server_bucket: str, tmp_path: Path) -> None:
    upload_csv(server_bucket, "exports/students 2026.csv", student_frame(2))

    summary = json_out(
        ccml(
            "train", "--data", f"s3://{server_bucket}/exports/students 2026.csv", "--json",
            bucket=server_bucket, cwd=tmp_path,
        )
    )  # fmt: skip

    store = store_for(server_bucket)
    assert version_ids(store) == [summary["version"]]
    assert store.resolve("champion") == summary["version"]
    assert summary["promoted"] is True
    assert summary["rows_used"] == len(student_frame(2))
    assert store.manifest(summary["version"]).data.source["location"] == (
        f"s3://{server_bucket}/exports/students 2026.csv"
    )


def test_malformed_event_file_exits_1_with_a_message_and_no_traceback(
    mock_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process: the message comes from the same command function the console script runs.
    monkeypatch.setenv("CCML_STORAGE", "s3")
    monkeypatch.setenv("CCML_S3_BUCKET", mock_bucket)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps({"Records": [None]}), "utf-8")

    result = CliRunner().invoke(app, ["retrain", "--event", str(event_file)])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert "error: malformed S3 event" in result.stderr
    assert version_ids(store_for(mock_bucket)) == []
