"""Injected S3 failures during event-driven retraining (in-process ``mock_aws``).

Each fault (a server error, a read timeout, a connect timeout) on each step (reading the
data, writing the artifact, writing the manifest, moving the alias) must make the handler
raise, leave the champion where it was and the store consistent, and release the claim so
that the redelivered event trains once the fault is gone.

Faults are raised at the client method, above botocore's retry loop: they stand for
failures that outlasted the retries.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from structlog.testing import capture_logs

import ccml.storage.s3
import handlers.retrain
from ccml.core.errors import CcmlError, DataSourceError, ModelStoreError
from ccml.core.types import TrainingResult
from tests.s3.helpers import (
    FakeLambdaContext,
    assert_store_consistent,
    inject_fault,
    s3_event,
    s3_record,
    store_for,
    student_frame,
    upload_csv,
    version_ids,
)

ENDPOINT = "https://s3.us-east-1.amazonaws.com"

# step -> (client operation, key pattern, error the handler raises, does a complete version remain)
STEPS: dict[str, tuple[str, str, type[CcmlError], bool]] = {
    "reading the data": ("get_object", r"^incoming/", DataSourceError, False),
    "writing the artifact": ("put_object", r"^models/versions/[^/]+/model\.skops$", ModelStoreError, False),
    "writing the manifest": ("put_object", r"^models/versions/[^/]+/manifest\.json$", ModelStoreError, False),
    "moving the alias": ("put_object", r"^models/aliases/champion\.json$", ModelStoreError, True),
}


def make_error(kind: str, operation: str) -> Exception:
    if kind == "server error":
        response: Any = {
            "Error": {"Code": "InternalError", "Message": "We encountered an internal error. Please try again."},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }
        return ClientError(response, "".join(part.title() for part in operation.split("_")))
    if kind == "read timeout":
        return ReadTimeoutError(endpoint_url=ENDPOINT)
    return ConnectTimeoutError(endpoint_url=ENDPOINT)


SCENARIOS = [
    *((step, kind) for step in STEPS for kind in ("server error", "read timeout")),
    ("reading the data", "connect timeout"),
]


@pytest.mark.parametrize(("step", "kind"), SCENARIOS)
def test_s3_fault_makes_the_handler_raise_and_leaves_champion_and_store_intact(
    step: str,
    kind: str,
    mock_bucket: str,
    lambda_env: Any,
    training: TrainingResult,
) -> None:
    # A tolerant gate promotes every challenger, so each run reaches the alias move.
    lambda_env(mock_bucket, promotion_tolerance=1.0)
    store = store_for(mock_bucket)
    champion = store.save(training.artifact).id
    store.promote(champion, reason="seeded by the test")
    history = len(store.history())
    key = "incoming/new data.csv"
    event = s3_event(s3_record(mock_bucket, key, upload_csv(mock_bucket, key, student_frame(7))))
    retrainer = handlers.retrain._retrainer()  # a warm container whose clients we can break
    operation, pattern, expected, leaves_version = STEPS[step]
    error = make_error(kind, operation)
    hits: list[str] = []
    with pytest.MonkeyPatch.context() as faults:
        if step == "reading the data":
            make_client = ccml.storage.s3.make_client

            def broken_client(*args: Any, **kwargs: Any) -> Any:
                client = make_client(*args, **kwargs)
                inject_fault(faults, client, operation, pattern, error, hits)
                return client

            # The data source builds its own client for each object: hand it a broken one.
            faults.setattr(ccml.storage.s3, "make_client", broken_client)
        else:
            inject_fault(faults, retrainer.store.client, operation, pattern, error, hits)

        with capture_logs() as logs, pytest.raises(expected) as raised:
            handlers.retrain.handler(event, FakeLambdaContext())

    assert hits, f"the fault on {step} was never reached"
    assert raised.value.__cause__ is error
    assert [entry["error_type"] for entry in logs if entry["event"] == "retrain_failed"] == [expected.__name__]
    assert store.resolve("champion") == champion
    assert len(store.history()) == history
    left = [v for v in version_ids(store) if v != champion]
    assert len(left) == (1 if leaves_version else 0)
    assert_store_consistent(store)

    # The fault is gone: the redelivered event trains and promotes (its claim was released).
    [retry] = handlers.retrain.handler(event, FakeLambdaContext())["results"]
    assert retry["status"] == "trained"
    assert store.resolve("champion") == retry["version"]
    assert_store_consistent(store)


def test_transient_fault_reading_the_champion_does_not_replace_it_unscored(
    mock_bucket: str, lambda_env: Any, training: TrainingResult
) -> None:
    lambda_env(mock_bucket)
    store = store_for(mock_bucket)
    champion = store.save(training.artifact).id
    store.promote(champion, reason="seeded by the test")
    key = "incoming/new data.csv"
    event = s3_event(s3_record(mock_bucket, key, upload_csv(mock_bucket, key, student_frame(7))))
    retrainer = handlers.retrain._retrainer()
    timeout = ReadTimeoutError(endpoint_url=ENDPOINT)
    with pytest.MonkeyPatch.context() as faults:
        hits = inject_fault(faults, retrainer.store.client, "get_object", f"^models/versions/{champion}/", timeout)
        try:
            [result] = handlers.retrain.handler(event, FakeLambdaContext())["results"]
        except CcmlError:
            result = {"status": "failed"}  # raising, so that Lambda retries, would be right too

    assert hits
    assert store.resolve("champion") == champion, result.get("reason")
