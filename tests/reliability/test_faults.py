"""Faults in event-driven retraining through the Lambda handler, against a real S3 endpoint (moto's
server): a 500 InternalError, a read timeout and a connect timeout at each step (reading the data,
claiming the event, writing the model file, the ONNX file, the manifest, moving the alias, writing
history), and the same event delivered twice at once. After each (``assert_survived``): the store
reads, the champion is the old or the new version, nothing committed is lost, what the failed save
left is invisible until garbage collection removes it (and only it), and the redelivered event trains
exactly once.

Store-level faults (SIGKILL, a full disk, damaged metadata, racing promotions) are in
``test_store_faults.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

import handlers.retrain
from ccml.core.contracts import ModelStore
from ccml.core.errors import CcmlError, DataSourceError, ModelStoreError
from ccml.core.types import TrainingResult
from tests.helpers import FAST_PARAMS
from tests.reliability.fault_helpers import (
    S3_KINDS,
    assert_collected,
    assert_survived,
    caused_by,
    committed,
    fail_s3,
    left_by_one_save,
    like_s3,
    race,
    s3_error,
    scenario,
    seed,
)
from tests.s3.helpers import FakeLambdaContext, s3_event, s3_record, student_frame, upload_csv

pytestmark = pytest.mark.integration  # every scenario talks to the moto server over HTTP
DATA_KEY = "incoming/new data.csv"


@pytest.fixture
def lambda_bucket(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The Lambda's CCML_* configuration for ``s3_bucket`` on the moto server, in a cold container."""
    values = {
        "storage": "s3",
        "s3_bucket": s3_bucket,
        "min_rows": "50",
        "trainer_params": json.dumps(FAST_PARAMS["random_forest"]),
        "promotion_tolerance": "1.0",  # every challenger is promoted, so each run reaches the alias move
        "log_level": "warning",
    }
    for name, value in values.items():
        monkeypatch.setenv(f"CCML_{name.upper()}", value)
    saved = structlog.get_config()
    handlers.retrain._retrainer.cache_clear()
    yield s3_bucket
    handlers.retrain._retrainer.cache_clear()
    structlog.configure(**saved)  # the handler configures logging for the process
    structlog.contextvars.clear_contextvars()


def upload_event(bucket: str) -> dict[str, Any]:
    return s3_event(s3_record(bucket, DATA_KEY, upload_csv(bucket, DATA_KEY, student_frame(7, rows=400))))


def invoke(event: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = handlers.retrain.handler(event, FakeLambdaContext())["results"]
    return results


# -- S3 errors and timeouts through the handler ------------------------------------------
# step -> (operation, key pattern, what the handler raises (None: it succeeds), files left
# without a manifest, whether the new version commits)
S3_STEPS: dict[str, tuple[str, str, type[CcmlError] | None, tuple[str, ...], bool]] = {
    "reading the data": ("GetObject", r"^incoming/", DataSourceError, (), False),
    "claiming the event": ("PutObject", r"^models/processed/", ModelStoreError, (), False),
    "writing the model file": ("PutObject", r"/model\.skops$", ModelStoreError, (), False),
    "writing the ONNX file": ("PutObject", r"/model\.onnx$", ModelStoreError, ("model.skops",), False),
    "writing the report": ("PutObject", r"/report\.html$", ModelStoreError, ("model.skops", "model.onnx"), False),
    "writing the manifest": (
        "PutObject",
        r"/manifest\.json$",
        ModelStoreError,
        ("model.skops", "model.onnx", "report.html"),
        False,
    ),
    "moving the alias": ("PutObject", r"^models/aliases/champion\.json$", ModelStoreError, (), True),
    "writing history": ("PutObject", r"^models/history/", None, (), True),
}


@pytest.mark.parametrize("kind", S3_KINDS)
@pytest.mark.parametrize("step", S3_STEPS)
def test_s3_fault_keeps_the_champion_loses_nothing_and_the_redelivery_trains(
    step: str, kind: str, lambda_bucket: str, s3_store: ModelStore, training: TrainingResult
) -> None:
    operation, pattern, raises, orphans, commits = S3_STEPS[step]
    with scenario(f"s3 {kind} {step}"):
        old = seed(s3_store, training)
        event = upload_event(lambda_bucket)
        handlers.retrain._retrainer()  # a warm container, its logging configured before the capture
        error = s3_error(kind, operation)
        with pytest.MonkeyPatch.context() as faults, capture_logs() as logs:
            hits = fail_s3(faults, operation, pattern, error)
            if raises is None:
                [result] = invoke(event)
            else:
                with pytest.raises(raises) as raised:
                    invoke(event)
                assert caused_by(raised.value, error), raised.value
        assert hits, f"the fault on {step} was never reached"
        new = sorted(committed(s3_store) - {old})
        assert len(new) == commits
        if raises is None:  # the alias moved: a lost history line is logged, never a failure
            assert (result["status"], result["version"]) == ("trained", new[0])
            assert any(entry["event"] == "history_write_failed" for entry in logs)
        assert_survived(s3_store, before=[old, *new], champion_in={new[0] if raises is None else old})
        assert_collected(s3_store, left_by_one_save(s3_store, orphans))

        [retry] = invoke(event)  # the fault is gone: the redelivered event is trained, once
        assert retry["status"] == ("already processed" if raises is None else "trained")
        assert_survived(s3_store, before=[old, *new, retry["version"]], champion_in={retry["version"]})


# -- the same event twice at once -------------------------------------------------------
@pytest.mark.parametrize("history", ["a new event", "an event whose first attempt failed"])
def test_same_event_twice_at_once_trains_exactly_one_version(
    history: str, lambda_bucket: str, s3_store: ModelStore, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scenario(f"same event twice at once: {history}"):
        like_s3(monkeypatch, read_latency_s=0.03)  # both racers read the claim before either writes it
        old = seed(s3_store, training)
        event = upload_event(lambda_bucket)
        handlers.retrain._retrainer()  # a warm container: both invocations share its components
        if history != "a new event":  # its claim is "failed": both invocations race to take it over
            with pytest.MonkeyPatch.context() as faults:
                fail_s3(faults, "GetObject", r"^incoming/", s3_error("500 InternalError", "GetObject"))
                with pytest.raises(DataSourceError):
                    invoke(event)

        results = [result for results in race(2, lambda: invoke(event)) for result in results]

        assert sorted(result["status"] for result in results) == ["already processed", "trained"]
        [trained] = [result["version"] for result in results if result["status"] == "trained"]
        assert sorted(committed(s3_store)) == sorted([old, trained])
        assert_survived(s3_store, before=[old, trained], champion_in={trained})
