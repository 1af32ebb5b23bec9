"""Fixtures of the reliability suite: a real S3 endpoint (moto's server) and stores on it.

The moto server runs for the whole session; each test gets a bucket of its own and an
environment pointing boto3 (and the processes it starts) at the server with fake credentials.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from ccml.storage.s3 import S3ModelStore, make_client
from tests.s3.helpers import unique_bucket_name


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # one line per request would bury every failure report
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug.setLevel(level)


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Fake credentials and the moto endpoint, for this process and the ones it starts."""
    for name in list(os.environ):
        if name.upper().startswith("AWS_"):
            monkeypatch.delenv(name)
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def s3_bucket(aws_env: dict[str, str]) -> str:
    name = unique_bucket_name()
    make_client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store(s3_bucket: str) -> S3ModelStore:
    return S3ModelStore(make_client(), s3_bucket, "models/")
