from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from ccml.core.errors import DataSourceError
from ccml.storage.csv_text import read_csv_text
from ccml.storage.local import LocalDataSource


def test_load_returns_text_cells_fingerprint_and_provenance(sample_csv: Path, sample_frame: pd.DataFrame) -> None:
    dataset = LocalDataSource(sample_csv).load()
    assert list(dataset.frame.columns) == list(sample_frame.columns)
    assert len(dataset.frame) == len(sample_frame)
    assert dataset.fingerprint == hashlib.sha256(sample_csv.read_bytes()).hexdigest()
    assert dataset.source == {"backend": "local", "location": str(sample_csv)}
    assert all(isinstance(v, str) for v in dataset.frame.iloc[:, 1].dropna())
    assert dataset.frame.isna().to_numpy().sum() == sample_frame.isna().to_numpy().sum()


def test_identity_changes_when_the_file_is_rewritten(sample_csv: Path) -> None:
    first = LocalDataSource(sample_csv).load().identity
    text = sample_csv.read_text()
    sample_csv.write_text(text + text.splitlines()[1] + "\n")
    os.utime(sample_csv, ns=(1, 1))
    assert LocalDataSource(sample_csv).load().identity != first


def test_missing_file_raises_data_source_error(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="No such file"):
        LocalDataSource(tmp_path / "absent.csv").load()


def test_file_over_the_size_limit_is_refused(sample_csv: Path) -> None:
    with pytest.raises(DataSourceError, match="over the limit"):
        LocalDataSource(sample_csv, max_bytes=100).load()


def test_malformed_csv_raises_data_source_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('a,b\n1,2\n"unterminated\n')
    with pytest.raises(DataSourceError, match="not a readable CSV"):
        LocalDataSource(path).load()


def test_binary_file_raises_data_source_error(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"a,b\n\xff\xfe\x00\x81,2\n")
    with pytest.raises(DataSourceError):
        LocalDataSource(path).load()


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file_loads_as_an_empty_table(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    assert LocalDataSource(path).load().frame.empty


def test_cells_keep_leading_zeros_and_are_stripped_of_leading_spaces() -> None:
    frame = read_csv_text(b"code, name\n007, Ada\n", "inline")
    assert list(frame.columns) == ["code", "name"]
    assert frame.iloc[0].tolist() == ["007", "Ada"]
