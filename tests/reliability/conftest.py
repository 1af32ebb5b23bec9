"""Fixtures of the reliability suite: a real S3 endpoint (moto's server) and stores on it.

The moto server runs for the whole session; each test gets a bucket of its own and an
environment pointing boto3 (and the processes it starts) at the server with fake credentials.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ccml.core.contracts import ModelStore
from ccml.storage.local import LocalModelStore
from ccml.storage.s3 import S3ModelStore, make_client
from tests.s3.helpers import running_moto_server, unique_bucket_name


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with running_moto_server() as url:
        yield url


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


@pytest.fixture
def stores(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], ModelStore]:
    """``stores("local")`` or ``stores("s3")``: an empty store of that backend (S3 on moto's server)."""

    def make(backend: str) -> ModelStore:
        if backend == "local":
            return LocalModelStore(tmp_path / "store")
        store: ModelStore = request.getfixturevalue("s3_store")
        return store

    return make
