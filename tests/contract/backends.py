"""Backend factories for the contract suites: one entry per registry key that can run here.

A new backend joins every contract test by adding one entry to ``MODEL_STORE_BACKENDS`` and
``DATA_SOURCE_BACKENDS``. A factory is a context manager, so a backend that needs set-up and
tear-down fits: the S3 entries run inside ``moto.mock_aws()`` with fake credentials and a
fresh bucket. A model-store factory yields an *opener*: every store it opens (with or without
a signing key) sees the same location, so tests can reopen a store with another key; its
``settings`` are the keyword settings with which the registry builds a store at that same
location (``Settings(storage=name, **opener.settings)``), so the backend's registration and
its own settings are checked too.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from unittest import mock

from ccml.core.contracts import DataSource, ModelStore
from ccml.storage.local import LocalDataSource, LocalModelStore


class DataSourceBackend(Protocol):
    """Where a data-source contract test puts objects, and how it reads them back."""

    def put(self, name: str, data: bytes) -> None:
        """Create or replace the object ``name``."""

    def source(self, name: str) -> DataSource:
        """A data source reading the object ``name`` (which may not exist)."""

    def location(self, name: str) -> str:
        """Where the object ``name`` is, as ``ccml train LOCATION`` takes it (the registry builds its source)."""


class StoreOpener(Protocol):
    settings: dict[str, Any]

    def __call__(self, signing_key: bytes | None = None) -> ModelStore: ...


class Opener:
    """A ``StoreOpener`` from a function and the settings that select the same location."""

    def __init__(self, open_store: Callable[[bytes | None], ModelStore], **settings: Any) -> None:
        self.open_store = open_store
        self.settings = settings

    def __call__(self, signing_key: bytes | None = None) -> ModelStore:
        return self.open_store(signing_key)


ModelStoreFactory = Callable[[Path], AbstractContextManager[StoreOpener]]
DataSourceFactory = Callable[[Path], AbstractContextManager[DataSourceBackend]]


@contextmanager
def local_model_store(workdir: Path) -> Iterator[StoreOpener]:
    def open_store(signing_key: bytes | None = None) -> ModelStore:
        return LocalModelStore(workdir / "models", signing_key=signing_key)

    yield Opener(open_store, home=workdir)  # the local store is $CCML_HOME/models


class LocalFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)

    def source(self, name: str) -> DataSource:
        return LocalDataSource(self.root / name)

    def location(self, name: str) -> str:
        return str(self.root / name)


@contextmanager
def local_files(workdir: Path) -> Iterator[DataSourceBackend]:
    yield LocalFiles(workdir / "data")


# -- S3, in-process through moto ---------------------------------------------------------------
_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@functools.cache
def _boto_session() -> Any:
    """One session for the whole run: a client from a warm session takes 50 ms, not 500."""
    import boto3

    return boto3.session.Session(region_name="us-east-1")


@contextmanager
def _mock_s3(bucket: str) -> Iterator[Any]:
    """A moto S3 with fake credentials (never the developer's) and one empty bucket."""
    from moto import mock_aws

    with mock.patch.dict(os.environ, _FAKE_AWS):
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            os.environ.pop(name, None)
        with mock_aws():
            client = _boto_session().client("s3")
            client.create_bucket(Bucket=bucket)
            yield client


@contextmanager
def s3_model_store(workdir: Path) -> Iterator[StoreOpener]:
    from ccml.storage.s3 import S3ModelStore

    with _mock_s3("contract-models") as client:

        def open_store(signing_key: bytes | None = None) -> ModelStore:
            return S3ModelStore(client, "contract-models", "ccml/models/", signing_key=signing_key)

        yield Opener(open_store, s3_bucket="contract-models", s3_model_prefix="ccml/models/")


class S3Objects:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"data/{name}", Body=data)

    def source(self, name: str) -> DataSource:
        from ccml.storage.s3 import S3DataSource

        return S3DataSource(self.client, self.bucket, f"data/{name}")

    def location(self, name: str) -> str:
        return f"s3://{self.bucket}/data/{name}"


@contextmanager
def s3_objects(workdir: Path) -> Iterator[DataSourceBackend]:
    with _mock_s3("contract-data") as client:
        yield S3Objects(client, "contract-data")


MODEL_STORE_BACKENDS: dict[str, ModelStoreFactory] = {"local": local_model_store, "s3": s3_model_store}
DATA_SOURCE_BACKENDS: dict[str, DataSourceFactory] = {"local": local_files, "s3": s3_objects}
