"""The Lambda handler in-process against ``mock_aws``: what triggers training, exactly once,
the time check, and failures that leave the champion alone.

``handlers.retrain`` builds its components once per container; the ``lambda_env`` fixture
sets the Lambda's CCML_* variables and starts every test with a cold container.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
from structlog.testing import capture_logs

import handlers.retrain
from ccml.core.errors import DataSourceError, DataValidationError, EventError, InsufficientTimeError
from ccml.core.types import TrainingResult
from ccml.storage.s3 import S3ModelStore
from tests.s3.helpers import (
    AWKWARD_KEY,
    TARGET,
    FakeLambdaContext,
    invalid_frame,
    poll,
    s3_event,
    s3_record,
    store_for,
    student_frame,
    upload_csv,
    version_ids,
)

LambdaEnv = Callable[..., None]


def invoke(event: dict[str, Any], context: FakeLambdaContext | None = None) -> dict[str, Any]:
    return handlers.retrain.handler(event, context or FakeLambdaContext())


def upload_event(bucket: str, key: str, seed: int = 1, frame: pd.DataFrame | None = None) -> dict[str, Any]:
    """Upload ``frame`` (default: synthetic students) to ``key``; return S3's notification of it."""
    data = student_frame(seed) if frame is None else frame
    return s3_event(s3_record(bucket, key, upload_csv(bucket, key, data)))


def publish_champion(store: S3ModelStore, training: TrainingResult) -> str:
    version = store.save(training.artifact).id
    store.promote(version, reason="seeded by the test")
    return version


def retrain_failures(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "retrain_failed"]


@pytest.fixture
def bucket(mock_bucket: str, lambda_env: LambdaEnv) -> str:
    """A bucket the Lambda is configured for."""
    lambda_env(mock_bucket)
    return mock_bucket


# -- what trains -------------------------------------------------------------------------
def test_csv_under_the_data_prefix_is_trained_promoted_and_summarised_as_json(bucket: str) -> None:
    event = upload_event(bucket, AWKWARD_KEY)

    summary = invoke(event)

    [result] = summary["results"]
    assert json.loads(json.dumps(summary)) == summary
    assert result["object"] == f"s3://{bucket}/{AWKWARD_KEY}"
    assert result["status"] == "trained"
    assert result["promoted"] is True
    assert "reaches the floor" in result["reason"]
    assert {"roc_auc", "pr_auc", "f1", "accuracy", "brier"} <= set(result["metrics"])
    store = store_for(bucket)
    assert version_ids(store) == [result["version"]]
    assert store.resolve("champion") == result["version"]
    manifest = store.manifest(result["version"])
    assert manifest.data.source["location"] == f"s3://{bucket}/{AWKWARD_KEY}"


def test_every_record_of_a_notification_is_handled(bucket: str) -> None:
    first = s3_record(bucket, "incoming/a.csv", upload_csv(bucket, "incoming/a.csv", student_frame(1)))
    second = s3_record(bucket, "incoming/b.csv", upload_csv(bucket, "incoming/b.csv", student_frame(2)))
    ignored = s3_record(bucket, "elsewhere/c.csv", '"0"')

    summary = invoke(s3_event(first, ignored, second))

    assert [r["status"] for r in summary["results"]] == ["trained", "skipped", "trained"]
    trained = [r["version"] for r in summary["results"] if r["status"] == "trained"]
    assert sorted(version_ids(store_for(bucket))) == sorted(trained)


def test_eventbridge_object_created_event_is_trained(bucket: str) -> None:
    etag = upload_csv(bucket, "incoming/eb.csv", student_frame(4))
    event = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": "incoming/eb.csv", "etag": etag.strip('"')}},
    }

    [result] = invoke(event)["results"]

    assert result["status"] == "trained"
    assert version_ids(store_for(bucket)) == [result["version"]]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("elsewhere/data.csv", "outside the data prefix"),
        ("incomingdata.csv", "outside the data prefix"),
        ("incoming/data.txt", "not a .csv object"),
        ("incoming/data.csv.gz", "not a .csv object"),
        ("models/versions/20260101T000000.000000Z/manifest.json", "under the model prefix"),
        ("models/incoming/data.csv", "under the model prefix"),
    ],
)
def test_object_that_must_not_trigger_training_is_skipped_without_a_claim(bucket: str, key: str, reason: str) -> None:
    # The object does not even exist: a skipped key is never read.
    [result] = invoke(s3_event(s3_record(bucket, key, '"0123"')))["results"]

    assert result["status"] == "skipped"
    assert reason in result["reason"]
    store = store_for(bucket)
    assert version_ids(store) == []
    assert store._list("processed/") == []


def test_handler_writes_into_the_bucket_never_trigger_training(bucket: str) -> None:
    [trained] = invoke(upload_event(bucket, "incoming/a.csv"))["results"]
    store = store_for(bucket)
    written = [key for key in store._list("") if not key.startswith("processed/")]
    own_writes = s3_event(*(s3_record(bucket, "models/" + key, '"0"') for key in written))

    results = invoke(own_writes)["results"]

    assert len(results) == len(written) >= 3  # artifact, manifest, alias, history
    assert {r["status"] for r in results} == {"skipped"}
    assert version_ids(store) == [trained["version"]]


# -- exactly once ------------------------------------------------------------------------
def test_same_event_delivered_twice_trains_once_then_reports_already_processed(bucket: str) -> None:
    event = upload_event(bucket, AWKWARD_KEY)

    [first] = invoke(event)["results"]
    [second] = invoke(event)["results"]

    assert first["status"] == "trained"
    assert (second["status"], second["reason"], second["version"]) == (
        "already processed",
        "already processed",
        first["version"],
    )
    assert version_ids(store_for(bucket)) == [first["version"]]


def test_new_upload_to_the_same_key_is_trained_again(bucket: str) -> None:
    [first] = invoke(upload_event(bucket, "incoming/weekly.csv", seed=1))["results"]
    [second] = invoke(upload_event(bucket, "incoming/weekly.csv", seed=2))["results"]

    assert (first["status"], second["status"]) == ("trained", "trained")
    assert version_ids(store_for(bucket)) == [first["version"], second["version"]]


def test_two_invocations_racing_on_one_event_train_exactly_one_version(bucket: str) -> None:
    event = upload_event(bucket, AWKWARD_KEY)
    handlers.retrain._retrainer()  # a warm container: both invocations share its components
    barrier = threading.Barrier(2)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def invocation() -> None:
        barrier.wait()
        try:
            results.extend(invoke(event)["results"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=invocation) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(r["status"] for r in results) == ["already processed", "trained"]
    [trained] = [r for r in results if r["status"] == "trained"]
    assert version_ids(store_for(bucket)) == [trained["version"]]


# -- time --------------------------------------------------------------------------------
def test_too_little_time_left_refuses_before_claiming_and_points_to_the_container_task(bucket: str) -> None:
    event = upload_event(bucket, "incoming/late.csv")

    with pytest.raises(InsufficientTimeError, match="ccml retrain --event") as raised:
        invoke(event, FakeLambdaContext(remaining_ms=30_000))

    assert "CCML_LAMBDA_MIN_REMAINING_S" in str(raised.value)
    store = store_for(bucket)
    assert version_ids(store) == []
    assert store._list("processed/") == []
    # Nothing was claimed, so the retry with time enough trains.
    [retry] = invoke(event, FakeLambdaContext(remaining_ms=600_000))["results"]
    assert retry["status"] == "trained"


class ProcessKilled(BaseException):
    """Stands in for Lambda killing the process at its timeout: no except clause runs."""


def test_claim_of_an_invocation_killed_at_its_timeout_is_taken_over_by_the_retry(
    mock_bucket: str, lambda_env: LambdaEnv
) -> None:
    lambda_env(mock_bucket, lambda_min_remaining_s=0.5)
    event = upload_event(mock_bucket, "incoming/slow.csv")
    retrainer = handlers.retrain._retrainer()

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise ProcessKilled

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(retrainer.workflow, "run", killed)
        with pytest.raises(ProcessKilled):
            invoke(event, FakeLambdaContext(remaining_ms=1_500))

    # Lambda retries a failed asynchronous invocation after a minute or more; the dead
    # invocation's claim must have expired by then (here: once its 1.5 s were up).
    result = poll(
        lambda: invoke(event)["results"][0], lambda r: r["status"] == "trained", deadline_s=15, interval_s=0.25
    )

    assert result["status"] == "trained"
    assert version_ids(store_for(mock_bucket)) == [result["version"]]


# -- failures ----------------------------------------------------------------------------
def test_invalid_csv_raises_logs_one_failure_line_and_keeps_the_champion(bucket: str, training: TrainingResult) -> None:
    store = store_for(bucket)
    champion = publish_champion(store, training)
    key = "incoming/broken.csv"
    event = upload_event(bucket, key, frame=invalid_frame(5))
    handlers.retrain._retrainer()  # configure logging before capturing it

    with capture_logs() as logs, pytest.raises(DataValidationError) as raised:
        invoke(event)

    assert "TimeSpentOnCourse: not a number x10" in str(raised.value)
    [failure] = retrain_failures(logs)
    assert failure["log_level"] == "error"
    assert failure["error_type"] == "DataValidationError"
    assert "data validation failed" in failure["error"]
    assert store.resolve("champion") == champion
    assert version_ids(store) == [champion]


def test_retry_of_a_failed_object_runs_again_and_fails_again(bucket: str, training: TrainingResult) -> None:
    store = store_for(bucket)
    champion = publish_champion(store, training)
    key = "incoming/broken.csv"
    event = upload_event(bucket, key, frame=invalid_frame(5))
    with pytest.raises(DataValidationError):
        invoke(event)
    handlers.retrain._retrainer()

    with capture_logs() as logs, pytest.raises(DataValidationError):
        invoke(event)  # not "already being processed": the first attempt released its claim

    assert len(retrain_failures(logs)) == 1
    assert store.resolve("champion") == champion
    assert version_ids(store) == [champion]


def test_object_over_the_size_limit_is_refused_and_points_to_the_container_task(
    mock_bucket: str, lambda_env: LambdaEnv, training: TrainingResult
) -> None:
    lambda_env(mock_bucket, s3_max_data_bytes=10_000)
    store = store_for(mock_bucket)
    champion = publish_champion(store, training)

    with pytest.raises(DataSourceError, match="over the limit of 10000") as raised:
        invoke(upload_event(mock_bucket, "incoming/huge.csv"))

    assert "container task" in str(raised.value)
    assert store.resolve("champion") == champion
    assert version_ids(store) == [champion]


def test_malformed_event_raises_config_error_and_logs_it(bucket: str) -> None:
    handlers.retrain._retrainer()

    with capture_logs() as logs, pytest.raises(EventError, match="malformed S3 event"):
        invoke({"Records": [{"eventName": "ObjectCreated:Put"}]})

    assert [entry["error_type"] for entry in retrain_failures(logs)] == ["EventError"]


def test_each_invocation_logs_with_its_own_request_id_only(bucket: str) -> None:
    structlog.contextvars.bind_contextvars(request_id="stale", leftover="from an earlier invocation")
    context = FakeLambdaContext(aws_request_id="req-2")

    invoke(s3_event(s3_record(bucket, "elsewhere/x.csv", '"0"')), context)

    assert structlog.contextvars.get_contextvars() == {"request_id": "req-2"}


def test_model_trained_on_random_labels_never_replaces_the_champion(bucket: str, training: TrainingResult) -> None:
    store = store_for(bucket)
    champion = publish_champion(store, training)
    outcomes = []
    for seed in range(20, 23):
        frame = student_frame(seed)
        frame[TARGET] = np.random.default_rng(seed).permutation(frame[TARGET].to_numpy())
        [result] = invoke(upload_event(bucket, f"incoming/noise-{seed}.csv", frame=frame))["results"]
        outcomes.append((round(result["metrics"]["roc_auc"], 3), result["promoted"]))
        if result["promoted"]:
            store.promote(champion, reason="undo the bad promotion before the next upload")

    assert [promoted for _, promoted in outcomes] == [False] * 3, outcomes
