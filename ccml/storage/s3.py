"""Amazon S3 backends: CSV objects as data, a key prefix as the model store.

boto3 is imported here only, and only when an S3 backend is built. Clients use boto3's
standard configuration chain (so ``AWS_ENDPOINT_URL`` points them at any S3-compatible
endpoint, such as moto's server in tests) with botocore's ``standard`` retry mode.
Write-once objects use S3 conditional writes (``If-None-Match: *``); aliases move with
``If-Match: <etag>``, so two writers can never both win.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ccml.core.contracts import DataSource, ModelStore
from ccml.core.errors import ConcurrentUpdateError, DataSourceError, ObjectExistsError
from ccml.core.registry import DATA_SOURCES, MODEL_STORES
from ccml.core.settings import Settings
from ccml.core.types import Dataset
from ccml.storage.csv_text import read_csv_text
from ccml.storage.s3_settings import S3Settings, S3StoreSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_EMPTY_RANGE = {"InvalidRange", "416"}


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme.lower() != "s3" or not bucket or not key:
        raise DataSourceError(f"{uri!r} is not of the form s3://bucket/key")
    return bucket, key


def make_client(max_attempts: int = 5, connect_timeout: float = 5.0, read_timeout: float = 60.0) -> S3Client:
    """Return an S3 client configured by boto3's standard chain, with standard-mode retries.

    ``connect_timeout`` and ``read_timeout`` are in seconds. boto3 is imported here, on first use.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return boto3.client("s3", config=config)


def _error_code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    error = response.get("Error", {})
    return str(error.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


class S3DataSource(DataSource):
    """One CSV object in S3, refused when larger than ``max_bytes``."""

    def __init__(
        self, client: S3Client, bucket: str, key: str, max_bytes: int | None = None, version_id: str | None = None
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.max_bytes = max_bytes
        self.version_id = version_id

    def at_version(self, version_id: str) -> S3DataSource:
        """This object's version ``version_id`` (what an event of a versioned bucket announced)."""
        return S3DataSource(self.client, self.bucket, self.key, self.max_bytes, version_id)

    def describe(self) -> dict[str, str]:
        """Return the backend name and the object's ``s3://`` URI (safe to log)."""
        return {"backend": "s3", "location": f"s3://{self.bucket}/{self.key}"}

    def _load(self) -> Dataset:
        pinned: dict[str, Any] = {"VersionId": self.version_id} if self.version_id else {}
        head = self.client.head_object(Bucket=self.bucket, Key=self.key, **pinned)
        size = int(head["ContentLength"])
        if self.max_bytes is not None and size > self.max_bytes:
            raise DataSourceError(
                f"s3://{self.bucket}/{self.key} is {size} bytes, over the limit of {self.max_bytes} "
                "(CCML_S3_MAX_DATA_BYTES); train it as a container task instead"
            )
        # Pin the exact object version that was sized, so a concurrent overwrite cannot slip in.
        etag = str(head.get("ETag", "")).strip('"')
        version_id = head.get("VersionId")
        extra: dict[str, Any] = {"VersionId": version_id} if version_id else {"IfMatch": head["ETag"]}
        data = self.client.get_object(Bucket=self.bucket, Key=self.key, **extra)["Body"].read()
        return Dataset(
            frame=read_csv_text(data, f"s3://{self.bucket}/{self.key}"),
            fingerprint=hashlib.sha256(data).hexdigest(),
            source=self.describe(),
            # "null" is what a versioning-suspended bucket calls every version: the ETag names it.
            identity=f"s3://{self.bucket}/{self.key}@{version_id if version_id not in (None, 'null') else etag}",
        )


class S3ModelStore(ModelStore):
    """A model store under ``s3://bucket/prefix`` with the same layout as the local one."""

    # The retraining role deliberately has no s3:DeleteObject (infra/template.yaml); an
    # operator collects garbage with ``ccml models gc`` and a role that may delete.
    collects_garbage_on_save = False

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "models/",
        signing_key: bytes | None = None,
        **options: Any,
    ) -> None:
        super().__init__(signing_key, **options)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"

    def describe(self) -> dict[str, str]:
        """Return the backend name and the store's ``s3://bucket/prefix/`` (safe to log)."""
        return {"backend": "s3", "location": f"s3://{self.bucket}/{self.prefix}"}

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _read(self, key: str, limit: int) -> bytes | None:
        # A range of limit + 1 bytes: an object that is too large is known without downloading it.
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes=0-{limit}")
        except ClientError as exc:  # NoSuchKey included: its code is in _MISSING
            if _error_code(exc) in _MISSING:
                return None
            if _error_code(exc) in _EMPTY_RANGE:  # a zero-byte object has no byte 0
                return b""
            raise
        data: bytes = response["Body"].read(limit + 1)
        if len(data) > limit:
            raise self.too_large(key, limit)
        return data

    def _delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def _write_new(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
        except ClientError as exc:
            if _error_code(exc) in _PRECONDITION:
                raise ObjectExistsError(f"{key} already exists") from exc
            raise

    def _swap(self, key: str, data: bytes, expected: str | None) -> None:
        condition = {"IfMatch": expected} if expected is not None else {"IfNoneMatch": "*"}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **condition)  # type: ignore[arg-type]
        except ClientError as exc:
            if _error_code(exc) in _PRECONDITION or _error_code(exc) in _MISSING:
                raise ConcurrentUpdateError(f"{key} changed since it was read") from exc
            raise

    def _token(self, key: str) -> str | None:
        try:
            return str(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ETag"])
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return None
            raise

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys.extend(item["Key"].removeprefix(self.prefix) for item in page.get("Contents", []))
        return keys


def build_s3_model_store(settings: Settings) -> S3ModelStore:
    """Return the model store under ``CCML_S3_BUCKET`` and ``CCML_S3_MODEL_PREFIX``, with the configured store options.

    Raises:
        ConfigError: ``CCML_S3_BUCKET`` is not set, or an ``CCML_S3_*`` variable is invalid.
    """
    s3 = settings.backend(MODEL_STORES, "s3", S3StoreSettings)
    return S3ModelStore(make_client(), s3.bucket, s3.model_prefix, **settings.store_options())


def build_s3_data_source(settings: Settings, location: str) -> S3DataSource:
    """Return a data source for ``location`` (``s3://bucket/key``), refusing objects over ``CCML_S3_MAX_DATA_BYTES``.

    Raises:
        DataSourceError: ``location`` is not of the form ``s3://bucket/key``.
        ConfigError: an ``CCML_S3_*`` variable is invalid.
    """
    bucket, key = parse_s3_uri(location)
    s3 = settings.backend(DATA_SOURCES, "s3", S3Settings)
    return S3DataSource(make_client(), bucket, key, max_bytes=s3.max_data_bytes)
