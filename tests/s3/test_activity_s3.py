"""Activity logs read from S3 through ccml's own S3 source (boto3), and results written back:
in process (``mock_aws``) and against moto's HTTP server."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ccml.activity.aggregation import aggregate
from ccml.activity.engines import DuckDBEngine
from ccml.activity.inputs import log_source
from ccml.activity.synthetic import generate_logs
from ccml.activity.synthetic_files import write_logs
from ccml.core.activity import load_activity_schema
from ccml.core.errors import DataSourceError
from ccml.core.settings import Settings
from ccml.storage.log_files import s3_files
from ccml.storage.s3 import make_client
from ccml.storage.tables import write_table

SCHEMA = load_activity_schema()


@pytest.fixture(params=["mock", "server"])
def bucket(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("mock_bucket" if request.param == "mock" else "server_bucket"))


@pytest.fixture
def local(tmp_path: Path) -> dict[str, Path]:
    return write_logs(generate_logs(courses=2, enrollments_per_course=80, seed=9), tmp_path / "local")


def upload(bucket: str, files: dict[str, Path], prefix: str) -> None:
    client = make_client()
    for path in files.values():
        client.upload_file(str(path), bucket, f"{prefix}{path.name}")


def test_a_log_glob_in_s3_gives_the_same_labelled_table_as_the_local_files(
    bucket: str, local: dict[str, Path], tmp_path: Path
) -> None:
    upload(bucket, local, "logs/run-1/")
    upload(bucket, {"other": local["events"]}, "logs/run-2/")  # not matched by the glob below
    settings = Settings(home=tmp_path / "home", log_level="warning")
    where = f"s3://{bucket}/logs/run-1"
    remote = log_source(
        settings,
        SCHEMA,
        f"{where}/ev*.csv",
        [7, 14],
        labels=f"{where}/labels.csv",
        enrollments=f"{where}/enrollments.csv",
    ).load()
    here = log_source(
        settings,
        SCHEMA,
        str(local["events"]),
        [7, 14],
        labels=str(local["labels"]),
        enrollments=str(local["enrollments"]),
    ).load()
    pd.testing.assert_frame_equal(remote.frame, here.frame)
    assert remote.source["location"] == f"s3://{bucket}/logs/run-1/ev*.csv"


def test_s3_files_keep_the_key_path_refuse_too_much_and_say_when_nothing_matches(
    bucket: str, local: dict[str, Path], tmp_path: Path
) -> None:
    upload(bucket, local, "daily/")
    paths = s3_files(f"s3://{bucket}/daily/*.csv", tmp_path / "work", max_bytes=10**9)
    assert sorted(p.name for p in paths) == sorted(p.name for p in local.values())
    assert all(p.is_relative_to(tmp_path / "work" / bucket / "daily") for p in paths)
    table = aggregate(DuckDBEngine(), SCHEMA, [p for p in paths if p.name == "events.csv"], [7]).table
    assert len(table) > 100
    with pytest.raises(DataSourceError, match="over the limit"):
        s3_files(f"s3://{bucket}/daily/*.csv", tmp_path / "small", max_bytes=1000)
    with pytest.raises(DataSourceError, match="no log objects match"):
        s3_files(f"s3://{bucket}/elsewhere/*.csv", tmp_path / "none", max_bytes=10**9)


def test_an_at_risk_list_is_written_to_s3_as_csv_and_parquet(bucket: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"enrollment_id": ["1", "2"], "course": ["C1", "C1"], "risk_rank": [1, 2]})
    client = make_client()
    for name in ("risk.csv", "risk.parquet"):
        write_table(frame, f"s3://{bucket}/out/{name}")
        client.download_file(bucket, f"out/{name}", str(tmp_path / name))
    assert pd.read_csv(tmp_path / "risk.csv", dtype={"enrollment_id": str}).equals(frame)
    import duckdb

    back = duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path / 'risk.parquet'}')").df()
    assert back["risk_rank"].tolist() == [1, 2]
