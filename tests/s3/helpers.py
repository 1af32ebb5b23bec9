"""Plain helpers of the S3 suite (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus

import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from ccml.core.contracts import ModelStore
from ccml.core.schema import load_schema
from ccml.core.settings import Settings
from ccml.models.training.synthetic import generate
from ccml.storage.s3 import S3ModelStore, make_client

T = TypeVar("T")

CCML_SCRIPT = Path(sys.executable).parent / "ccml"
FAST_TRAINER: dict[str, Any] = {"n_estimators": 10, "n_jobs": 1}
TRAINING_ROWS = 600
TARGET = "CourseCompletion"
# A key with a space, a '+' and a non-ASCII character: S3 notifications URL-encode all three.
AWKWARD_KEY = "incoming/new data+1 é.csv"


@contextlib.contextmanager
def running_moto_server() -> Iterator[str]:
    """A real HTTP S3 endpoint (moto's server) on a free local port; yields its URL."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # one log record per request would bury every failure report
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug.setLevel(level)


def unique_bucket_name() -> str:
    return f"ccml-test-{uuid.uuid4().hex[:12]}"


# -- settings, data, stores --------------------------------------------------------------
def s3_settings(bucket: str, **overrides: Any) -> Settings:
    """Settings of an S3 deployment that trains in well under a second."""
    values: dict[str, Any] = {"storage": "s3", "s3_bucket": bucket, "min_rows": 50, "trainer_params": FAST_TRAINER}
    values.update(overrides)
    return Settings(**values)


def student_frame(seed: int, rows: int = TRAINING_ROWS) -> pd.DataFrame:
    """Synthetic students in the built-in schema's CSV columns (a fresh copy: change it freely)."""
    return _students(seed, rows).copy()


@functools.cache
def _students(seed: int, rows: int) -> pd.DataFrame:
    return generate(load_schema(), rows, seed)


def invalid_frame(seed: int) -> pd.DataFrame:
    """Students whose table fails validation: text in a numeric column, an unknown target value."""
    frame = student_frame(seed).astype(str)
    frame.loc[:9, "TimeSpentOnCourse"] = "lots"
    frame.loc[10:19, TARGET] = "7"
    return frame


def upload_csv(bucket: str, key: str, frame: pd.DataFrame) -> str:
    """Put ``frame`` as CSV at ``key``; return the new object's ETag (quoted, as S3 returns it)."""
    response = make_client().put_object(Bucket=bucket, Key=key, Body=frame.to_csv(index=False).encode())
    return str(response["ETag"])


def store_for(bucket: str) -> S3ModelStore:
    return S3ModelStore(make_client(), bucket, "models/")


def version_ids(store: ModelStore) -> list[str]:
    return [version.id for version in store.versions()]


def champion_or_none(store: ModelStore) -> str | None:
    record = store.alias("champion")
    return record.version if record else None


def assert_store_consistent(store: ModelStore) -> None:
    """Only complete versions are listed, each loads (checksums verified), and the champion is one of them."""
    ids = version_ids(store)
    for version in ids:
        store.load(version)
    champion = champion_or_none(store)
    assert champion is None or champion in ids


# -- events and the Lambda context -------------------------------------------------------
def s3_record(bucket: str, key: str, etag: str | None = None, event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    """One record of an S3 event notification, the key URL-encoded as S3 sends it ('/' kept)."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": 1024}
    if etag is not None:
        obj["eTag"] = etag.strip('"')
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-27T12:00:00.000Z",
        "eventName": event_name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": obj},
    }


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


@dataclass
class FakeLambdaContext:
    """The parts of Lambda's context object that the handler uses."""

    remaining_ms: int = 600_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


# -- faults ------------------------------------------------------------------------------
def inject_fault(
    monkeypatch: pytest.MonkeyPatch,
    client: Any,
    operation: str,
    key_pattern: str,
    error: Exception,
    hits: list[str] | None = None,
) -> list[str]:
    """Make ``client.<operation>`` raise ``error`` for keys matching ``key_pattern``.

    Returns (or appends to ``hits``) the keys the fault hit, so a test can prove its fault was reached. Raising at the
    client method (above botocore's retry loop) models a failure that outlasted the retries.
    """
    original = getattr(client, operation)
    pattern = re.compile(key_pattern)
    hits = [] if hits is None else hits

    def faulty(**kwargs: Any) -> Any:
        if pattern.search(kwargs.get("Key", "")):
            hits.append(kwargs["Key"])
            raise error
        return original(**kwargs)

    monkeypatch.setattr(client, operation, faulty)
    return hits


# -- polling -----------------------------------------------------------------------------
def poll(probe: Callable[[], T], accept: Callable[[T], bool], deadline_s: float, interval_s: float = 0.1) -> T:
    """Call ``probe`` until ``accept`` holds for its value or the deadline passes; return the last value."""
    deadline = time.monotonic() + deadline_s
    value = probe()
    while not accept(value) and time.monotonic() < deadline:
        time.sleep(interval_s)
        value = probe()
    return value
