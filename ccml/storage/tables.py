"""Writing a result table (features, an at-risk list) as CSV or Parquet, to a local path or to S3.

Parquet is written by DuckDB, which the log aggregation already needs, so no Arrow library is
added for it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from ccml.core.errors import DataSourceError
from ccml.storage.log_files import is_s3
from ccml.storage.s3 import make_client, parse_s3_uri


def _write_local(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        import duckdb

        with duckdb.connect() as con:
            con.register("ccml_table", frame)
            con.execute(f"COPY ccml_table TO '{str(path).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
    elif path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise DataSourceError(f"cannot write {path}: name a .csv or a .parquet file")


def write_table(frame: pd.DataFrame, location: str) -> str:
    """Write ``frame`` to ``location`` (its extension picks the format); return where it went."""
    if not is_s3(location):
        _write_local(frame, Path(location))
        return location
    bucket, key = parse_s3_uri(location)
    with tempfile.TemporaryDirectory(prefix="ccml-out-") as work:
        local = Path(work) / Path(key).name
        _write_local(frame, local)
        make_client().upload_file(str(local), bucket, key)
    return location
