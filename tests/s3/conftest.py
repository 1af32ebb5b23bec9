"""Fixtures of the S3 suite: an isolated AWS environment, moto in-process (``mock_aws``) and
as a real HTTP endpoint (``ThreadedMotoServer``), and the Lambda's configuration.

Every test gets fake credentials and no CCML_*/AWS_* variable of the developer's shell. Tests
on the moto server point boto3 at it with ``AWS_ENDPOINT_URL`` and create a bucket of their own,
since the server's state is shared by the whole session.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

import handlers.retrain
from ccml.storage.s3 import make_client
from tests.s3.helpers import FAST_TRAINER, running_moto_server, unique_bucket_name


# -- environment -------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials, no CCML_*/AWS_* variable or AWS config file of the developer's shell."""
    for name in list(os.environ):
        if name.upper().startswith(("CCML_", "AWS_")) or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _atomic_conditional_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's conditional PutObject atomic, as S3's is.

    moto checks ``If-None-Match``/``If-Match`` and then stores the object in two steps without
    a lock, so two racing writers can both pass the check; real S3 evaluates the condition
    and the write atomically. Serialising moto's PutObject handler makes the race tests
    measure ccml's use of conditional writes, not moto's check-then-set window. (A writer
    that used no condition at all would still be caught: both of its writes would succeed.)
    """
    from moto.s3.responses import S3Response

    original = S3Response.put_object
    lock = threading.Lock()

    def put_object(self: S3Response) -> Any:
        with lock:
            return original(self)

    monkeypatch.setattr(S3Response, "put_object", put_object)


# -- moto --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real HTTP S3 endpoint on a free local port, for the whole session."""
    with running_moto_server() as url:
        yield url


@pytest.fixture
def s3_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (and every process started from this environment) at the moto server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


@pytest.fixture
def server_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the moto server."""
    name = unique_bucket_name()
    make_client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def mock_s3() -> Iterator[None]:
    """moto in-process: boto3 calls never leave the test process.

    boto3's default session is kept between tests (moto would replace it on every start):
    building the first client of a fresh session costs a few tenths of a second, and nothing
    in it is specific to a test (credentials, region and endpoint come from the environment).
    """
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        yield


@pytest.fixture
def mock_bucket(mock_s3: None) -> str:
    name = unique_bucket_name()
    make_client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``lambda_env(bucket, **settings)``: the Lambda's CCML_* configuration, and a cold container.

    The handler builds its components once per container; the cache is cleared before and
    after each test so no test sees another's settings.
    """

    def configure(bucket: str, **overrides: Any) -> None:
        values: dict[str, Any] = {
            "storage": "s3",
            "s3_bucket": bucket,
            "min_rows": 50,
            "trainer_params": FAST_TRAINER,
            "log_level": "info",
            **overrides,
        }
        for name, value in values.items():
            text = json.dumps(value) if isinstance(value, dict) else str(value)
            monkeypatch.setenv(f"CCML_{name.upper()}", text)
        handlers.retrain._retrainer.cache_clear()

    handlers.retrain._retrainer.cache_clear()
    yield configure
    handlers.retrain._retrainer.cache_clear()
