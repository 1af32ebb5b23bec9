"""S3DataSource: one CSV object in a bucket, read as text, fingerprinted, refused when too big."""

from __future__ import annotations

import hashlib
import re

import pytest

from ccml.core.components import build_data_source
from ccml.core.errors import DataSourceError
from ccml.core.settings import Settings
from ccml.storage.s3 import S3DataSource, make_client
from tests.s3.helpers import AWKWARD_KEY, TARGET, TRAINING_ROWS, s3_settings, student_frame

KEYS = ["incoming/plain.csv", AWKWARD_KEY, "incoming/sub dir/ünï cødé+%+.csv"]


def put_students(bucket: str, key: str, seed: int = 3) -> tuple[bytes, str]:
    data = student_frame(seed).to_csv(index=False).encode()
    etag = make_client().put_object(Bucket=bucket, Key=key, Body=data)["ETag"]
    return data, etag


def assert_reads_object(bucket: str, key: str, data: bytes, etag: str) -> None:
    dataset = S3DataSource(make_client(), bucket, key).load()

    assert len(dataset.frame) == TRAINING_ROWS
    assert list(dataset.frame.columns) == list(student_frame(3).columns)
    assert dataset.frame[TARGET].tolist() == student_frame(3)[TARGET].astype(str).tolist()
    assert dataset.fingerprint == hashlib.sha256(data).hexdigest()
    assert dataset.identity == f"s3://{bucket}/{key}@{etag.strip(chr(34))}"
    assert dataset.source == {"backend": "s3", "location": f"s3://{bucket}/{key}"}


@pytest.mark.parametrize("key", KEYS)
def test_reads_a_csv_object_with_the_sha256_of_its_bytes_as_fingerprint(mock_bucket: str, key: str) -> None:
    data, etag = put_students(mock_bucket, key)

    assert_reads_object(mock_bucket, key, data, etag)


@pytest.mark.integration
def test_reads_a_csv_at_a_key_with_spaces_plus_and_non_ascii_over_http(server_bucket: str) -> None:
    data, etag = put_students(server_bucket, AWKWARD_KEY)
    listed = [item["Key"] for item in make_client().list_objects_v2(Bucket=server_bucket)["Contents"]]
    assert listed == [AWKWARD_KEY]

    assert_reads_object(server_bucket, AWKWARD_KEY, data, etag)


def test_object_over_max_bytes_is_refused_with_a_message_naming_the_limit(mock_bucket: str) -> None:
    data, _ = put_students(mock_bucket, "incoming/big.csv")
    source = S3DataSource(make_client(), mock_bucket, "incoming/big.csv", max_bytes=len(data) - 1)

    with pytest.raises(DataSourceError) as raised:
        source.load()

    message = str(raised.value)
    assert f"is {len(data)} bytes, over the limit of {len(data) - 1}" in message
    assert "CCML_S3_MAX_DATA_BYTES" in message
    assert "container task" in message


def test_object_of_exactly_max_bytes_is_read(mock_bucket: str) -> None:
    data, _ = put_students(mock_bucket, "incoming/edge.csv")

    dataset = S3DataSource(make_client(), mock_bucket, "incoming/edge.csv", max_bytes=len(data)).load()

    assert dataset.fingerprint == hashlib.sha256(data).hexdigest()


def test_max_data_bytes_setting_reaches_the_source_built_from_settings(
    mock_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_students(mock_bucket, "incoming/big.csv")
    monkeypatch.setenv("CCML_STORAGE", "s3")
    monkeypatch.setenv("CCML_S3_BUCKET", mock_bucket)
    monkeypatch.setenv("CCML_S3_MAX_DATA_BYTES", "1000")

    source = build_data_source(Settings.load(), f"s3://{mock_bucket}/incoming/big.csv")

    with pytest.raises(DataSourceError, match="over the limit of 1000"):
        source.load()


def test_missing_object_raises_data_source_error_naming_it(mock_bucket: str) -> None:
    source = S3DataSource(make_client(), mock_bucket, "incoming/nothing here.csv")

    with pytest.raises(DataSourceError, match=re.escape(f"s3://{mock_bucket}/incoming/nothing here.csv")):
        source.load()


def test_missing_bucket_raises_data_source_error(mock_s3: None) -> None:
    with pytest.raises(DataSourceError, match=re.escape("s3://ccml-no-such-bucket/incoming/x.csv")):
        S3DataSource(make_client(), "ccml-no-such-bucket", "incoming/x.csv").load()


def test_empty_object_loads_as_an_empty_table(mock_bucket: str) -> None:
    make_client().put_object(Bucket=mock_bucket, Key="incoming/empty.csv", Body=b"")

    dataset = S3DataSource(make_client(), mock_bucket, "incoming/empty.csv").load()

    assert dataset.frame.empty
    assert dataset.fingerprint == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("uri", ["s3://bucket-only", "s3:///key-only.csv", "s3://"])
def test_s3_location_without_bucket_or_key_is_refused(mock_bucket: str, uri: str) -> None:
    with pytest.raises(DataSourceError, match="is not of the form s3://bucket/key"):
        build_data_source(s3_settings(mock_bucket), uri).load()
