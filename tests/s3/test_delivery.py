"""The Lambda handler on the ways S3 delivers its events (directly, through EventBridge, SNS and
SQS), on events of other buckets, and on the claim each delivered object takes. In-process
against ``mock_aws``; ``lambda_env`` gives every test a cold container.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import handlers.retrain
from ccml.core.errors import DataValidationError, EventError
from ccml.core.events import parse_event
from ccml.core.settings import Settings
from ccml.models.training.event_retraining import build_event_retrainer
from ccml.storage.s3 import make_client
from tests.s3.envelopes import WRAPPERS, eventbridge_event, s3_test_event, sns_notification, sqs_event
from tests.s3.helpers import (
    AWKWARD_KEY,
    FAST_TRAINER,
    FakeLambdaContext,
    invalid_frame,
    s3_event,
    s3_record,
    store_for,
    student_frame,
    unique_bucket_name,
    upload_csv,
    version_ids,
)

LambdaEnv = Callable[..., None]
Wrapper = Callable[[dict[str, Any]], dict[str, Any]]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    return handlers.retrain.handler(event, FakeLambdaContext())


def bucket_keys(bucket: str) -> list[str]:
    return [item["Key"] for item in make_client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def logged(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


@pytest.fixture
def bucket(mock_bucket: str, lambda_env: LambdaEnv) -> str:
    """The bucket the Lambda is configured for (CCML_S3_BUCKET)."""
    lambda_env(mock_bucket)
    return mock_bucket


@pytest.fixture
def other_bucket(mock_s3: None) -> str:
    """A second bucket holding a valid training CSV under the data prefix."""
    name = unique_bucket_name()
    make_client().create_bucket(Bucket=name)
    upload_csv(name, "incoming/theirs.csv", student_frame(3))
    return name


# -- the bucket rule ---------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", [lambda e: e, *WRAPPERS.values()], ids=["bare", *WRAPPERS])
def test_object_of_another_bucket_is_skipped_logged_and_never_read(
    bucket: str, other_bucket: str, wrap: Wrapper
) -> None:
    etag = make_client().head_object(Bucket=other_bucket, Key="incoming/theirs.csv")["ETag"]
    handlers.retrain._retrainer()

    with capture_logs() as logs:
        summary = invoke(wrap(s3_event(s3_record(other_bucket, "incoming/theirs.csv", etag))))

    [result] = summary["results"]
    assert (result["object"], result["status"]) == (f"s3://{other_bucket}/incoming/theirs.csv", "skipped")
    assert result["reason"] == f"bucket {other_bucket!r} is not CCML_S3_BUCKET ({bucket!r})"
    [line] = logged(logs, "event_skipped")
    assert (line["reason"], line["bucket"], line["key"]) == (result["reason"], other_bucket, "incoming/theirs.csv")
    assert bucket_keys(bucket) == []  # no version, no claim, nothing at all
    assert bucket_keys(other_bucket) == ["incoming/theirs.csv"]


def test_event_mixing_buckets_trains_only_the_configured_buckets_object(bucket: str, other_bucket: str) -> None:
    ours = s3_record(bucket, "incoming/ours.csv", upload_csv(bucket, "incoming/ours.csv", student_frame(1)))
    theirs = s3_record(other_bucket, "incoming/theirs.csv", '"e1"')

    summary = invoke(s3_event(theirs, ours))

    assert [r["status"] for r in summary["results"]] == ["skipped", "trained"]
    assert version_ids(store_for(bucket)) == [summary["results"][1]["version"]]
    assert bucket_keys(other_bucket) == ["incoming/theirs.csv"]


def test_eventbridge_event_of_another_bucket_is_skipped(bucket: str, other_bucket: str) -> None:
    [result] = invoke(eventbridge_event(other_bucket, "incoming/theirs.csv", etag="e1"))["results"]

    assert result["status"] == "skipped"
    assert "is not CCML_S3_BUCKET" in result["reason"]
    assert bucket_keys(bucket) == []


def test_without_a_configured_bucket_no_objects_train(other_bucket: str, tmp_path: Path) -> None:
    # A local store and no CCML_S3_BUCKET (`ccml retrain --event` on a laptop): no bucket is trusted.
    settings = Settings(storage="local", home=tmp_path / "home", min_rows=50, trainer_params=FAST_TRAINER)
    retrainer = build_event_retrainer(settings)

    [result] = retrainer.handle(s3_event(s3_record(other_bucket, "incoming/theirs.csv", '"e1"')))["results"]

    assert result["status"] == "skipped"
    assert "CCML_S3_BUCKET is not set" in result["reason"]
    assert retrainer.store.versions() == []


# -- SNS and SQS -------------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=list(WRAPPERS))
def test_wrapped_notification_trains_and_a_redelivery_is_already_processed(bucket: str, wrap: Wrapper) -> None:
    event = wrap(s3_event(s3_record(bucket, AWKWARD_KEY, upload_csv(bucket, AWKWARD_KEY, student_frame(1)))))

    [first] = invoke(event)["results"]
    [second] = invoke(event)["results"]

    assert (first["object"], first["status"]) == (f"s3://{bucket}/{AWKWARD_KEY}", "trained")
    assert (second["status"], second["version"]) == ("already processed", first["version"])
    assert version_ids(store_for(bucket)) == [first["version"]]


def test_failure_in_an_sqs_batch_propagates_and_the_retried_batch_trains_nothing_twice(bucket: str) -> None:
    good = s3_event(s3_record(bucket, "incoming/good.csv", upload_csv(bucket, "incoming/good.csv", student_frame(1))))
    bad_etag = upload_csv(bucket, "incoming/bad.csv", invalid_frame(5))
    bad = s3_event(s3_record(bucket, "incoming/bad.csv", bad_etag))
    batch = sqs_event(sns_notification(good), sns_notification(bad))
    handlers.retrain._retrainer()

    with capture_logs() as logs, pytest.raises(DataValidationError):
        invoke(batch)
    [trained] = version_ids(store_for(bucket))
    # SQS makes the whole batch visible again; its retry re-trains nothing and fails again, loudly.
    with pytest.raises(DataValidationError):
        invoke(batch)

    assert [line["error_type"] for line in logged(logs, "retrain_failed")] == ["DataValidationError"]
    assert version_ids(store_for(bucket)) == [trained]


@pytest.mark.parametrize("wrap", [lambda e: e, *WRAPPERS.values()], ids=["bare", *WRAPPERS])
def test_s3_test_event_is_acknowledged_logged_and_trains_nothing(bucket: str, wrap: Wrapper) -> None:
    handlers.retrain._retrainer()

    with capture_logs() as logs:
        summary = invoke(wrap(s3_test_event(bucket)))

    assert summary["results"] == []
    [ignored] = summary["ignored"]
    assert (ignored["kind"], ignored["bucket"]) == ("s3:TestEvent", bucket)
    assert [(line["kind"], line["bucket"]) for line in logged(logs, "event_ignored")] == [("s3:TestEvent", bucket)]
    assert json.loads(json.dumps(summary)) == summary
    assert bucket_keys(bucket) == []


def test_unrecognised_wrapper_fails_the_invocation_and_trains_nothing(bucket: str) -> None:
    good = s3_event(s3_record(bucket, "incoming/a.csv", upload_csv(bucket, "incoming/a.csv", student_frame(1))))
    batch = sqs_event(good, good)
    batch["Records"][1]["body"] = "not json"
    handlers.retrain._retrainer()

    with capture_logs() as logs, pytest.raises(EventError, match=r"\$\.Records\[1\]\.body: not JSON"):
        invoke(batch)

    assert [line["error_type"] for line in logged(logs, "retrain_failed")] == ["EventError"]
    assert bucket_keys(bucket) == ["incoming/a.csv"]  # the good message did not train either


# -- one claim per object version ----------------------------------------------------------------
def test_one_upload_announced_by_s3_and_by_eventbridge_trains_once(bucket: str) -> None:
    etag = upload_csv(bucket, "incoming/a.csv", student_frame(1))

    [notified] = invoke(s3_event(s3_record(bucket, "incoming/a.csv", etag)))["results"]
    [bridged] = invoke(eventbridge_event(bucket, "incoming/a.csv", etag=etag.strip('"')))["results"]

    assert notified["status"] == "trained"
    assert (bridged["status"], bridged["version"]) == ("already processed", notified["version"])
    assert version_ids(store_for(bucket)) == [notified["version"]]


def test_two_uploads_to_one_key_of_a_versioned_bucket_train_twice(bucket: str) -> None:
    client = make_client()
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    events = []
    for seed in (1, 2):
        put = client.put_object(Bucket=bucket, Key="incoming/w.csv", Body=student_frame(seed).to_csv(index=False))
        events.append(
            eventbridge_event(bucket, "incoming/w.csv", etag=put["ETag"].strip('"'), **{"version-id": put["VersionId"]})
        )

    results = [invoke(event)["results"][0] for event in events]

    assert [r["status"] for r in results] == ["trained", "trained"]
    assert version_ids(store_for(bucket)) == [r["version"] for r in results]
    assert len(store_for(bucket)._list("processed/")) == 2


def test_each_sample_event_trains_its_own_object_once(mock_s3: None, lambda_env: LambdaEnv) -> None:
    # The README walkthrough: bucket ccml-demo, each sample's object uploaded, each sample run twice.
    make_client().create_bucket(Bucket="ccml-demo")
    lambda_env("ccml-demo")
    samples = [json.loads(path.read_text("utf-8")) for path in sorted(EXAMPLES.glob("*.json"))]
    for index, sample in enumerate(samples):
        [announced] = parse_event(sample).objects
        upload_csv("ccml-demo", announced.key, student_frame(index + 1))

    first = [invoke(sample)["results"][0] for sample in samples]
    again = [invoke(sample)["results"][0] for sample in samples]

    assert [r["status"] for r in first] == ["trained"] * len(samples)
    assert [r["status"] for r in again] == ["already processed"] * len(samples)
    assert sorted(version_ids(store_for("ccml-demo"))) == sorted(r["version"] for r in first)
