"""An object overwritten after its event: in a versioned bucket (as infra/template.yaml makes it)
the announced version trains, not whatever the key holds by then; without versions the current
bytes train, and the change is logged."""

from __future__ import annotations

from typing import Any

import pandas as pd
from structlog.testing import capture_logs

import handlers.retrain
from ccml.storage.s3 import make_client
from tests.s3.helpers import FakeLambdaContext, s3_event, s3_record, store_for, student_frame, upload_csv


def _versioned_record(bucket: str, key: str, put: dict[str, Any]) -> dict[str, Any]:
    record = s3_record(bucket, key, put["ETag"])
    record["s3"]["object"]["versionId"] = put["VersionId"]
    return record


def test_in_a_versioned_bucket_the_announced_version_trains_not_the_latest(mock_bucket: str, lambda_env: Any) -> None:
    lambda_env(mock_bucket)
    client = make_client()
    client.put_bucket_versioning(Bucket=mock_bucket, VersioningConfiguration={"Status": "Enabled"})
    key = "incoming/weekly.csv"
    frames = [student_frame(1), student_frame(2, rows=300)]
    puts = [client.put_object(Bucket=mock_bucket, Key=key, Body=f.to_csv(index=False)) for f in frames]

    first = handlers.retrain.handler(s3_event(_versioned_record(mock_bucket, key, puts[0])), FakeLambdaContext())

    [result] = first["results"]
    assert result["status"] == "trained"
    assert result["rows_used"] == len(frames[0]) != len(frames[1])  # the first upload's rows, though v2 is newer
    manifest = store_for(mock_bucket).manifest(result["version"])
    assert manifest.data.rows_read == len(frames[0])


def test_without_versions_a_changed_object_is_logged(mock_bucket: str, lambda_env: Any) -> None:
    lambda_env(mock_bucket)
    key = "incoming/daily.csv"
    stale = s3_event(s3_record(mock_bucket, key, upload_csv(mock_bucket, key, student_frame(3))))
    upload_csv(mock_bucket, key, pd.concat([student_frame(4), student_frame(5)], ignore_index=True))
    handlers.retrain._retrainer()  # a warm container: logging is configured before the capture
    with capture_logs() as logs:
        [result] = handlers.retrain.handler(stale, FakeLambdaContext())["results"]
    assert result["status"] == "trained"
    [changed] = [entry for entry in logs if entry["event"] == "event_object_changed"]
    assert changed["announced"] != changed["read"]
