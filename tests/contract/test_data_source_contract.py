"""What every ``DataSource`` backend guarantees."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from ccml.core.errors import ConfigError, DataSourceError
from ccml.core.registry import DATA_SOURCES
from ccml.core.schema import FeatureSchema
from ccml.models.training.validation import validate
from tests.contract.backends import DATA_SOURCE_BACKENDS, DataSourceBackend
from tests.helpers import csv_bytes


def test_every_importable_registered_source_has_a_contract_backend() -> None:
    runnable = []
    for name in DATA_SOURCES.names():
        try:
            DATA_SOURCES.get(name)
        except ConfigError:  # registered for later, not importable here
            continue
        runnable.append(name)
    assert set(runnable) <= set(DATA_SOURCE_BACKENDS), "add the backend to tests/contract/backends.py"


def test_load_returns_every_row_as_text_with_the_bytes_fingerprint(
    files: DataSourceBackend, sample_frame: pd.DataFrame
) -> None:
    data = csv_bytes(sample_frame.head(100))
    files.put("train.csv", data)
    dataset = files.source("train.csv").load()
    assert list(dataset.frame.columns) == list(sample_frame.columns)
    assert len(dataset.frame) == 100
    assert dataset.fingerprint == hashlib.sha256(data).hexdigest()
    cells = [cell for cell in dataset.frame.to_numpy().ravel() if not pd.isna(cell)]
    assert cells
    assert all(isinstance(cell, str) for cell in cells)
    assert dataset.frame.isna().to_numpy().sum() == sample_frame.head(100).isna().to_numpy().sum()


def test_loaded_table_validates_against_the_schema(
    files: DataSourceBackend, sample_frame: pd.DataFrame, schema: FeatureSchema
) -> None:
    files.put("train.csv", csv_bytes(sample_frame.head(100)))
    assert validate(files.source("train.csv").load(), schema).rows == 100


def test_identity_and_fingerprint_change_when_the_object_changes(
    files: DataSourceBackend, sample_frame: pd.DataFrame
) -> None:
    files.put("train.csv", csv_bytes(sample_frame.head(50)))
    first = files.source("train.csv").load()
    files.put("train.csv", csv_bytes(sample_frame.head(60)))
    second = files.source("train.csv").load()
    assert second.fingerprint != first.fingerprint
    assert second.identity != first.identity


def test_missing_object_raises_data_source_error_naming_it(files: DataSourceBackend) -> None:
    with pytest.raises(DataSourceError, match=r"absent\.csv"):
        files.source("absent.csv").load()


def test_unparseable_object_raises_data_source_error(files: DataSourceBackend) -> None:
    files.put("bad.csv", b'a,b\n1,2\n"never closed\n')
    with pytest.raises(DataSourceError):
        files.source("bad.csv").load()


def test_empty_object_loads_as_an_empty_table(files: DataSourceBackend) -> None:
    files.put("empty.csv", b"")
    assert files.source("empty.csv").load().frame.empty


def test_describe_is_safe_and_names_the_location(files: DataSourceBackend) -> None:
    source = files.source("train.csv")
    description = source.describe()
    assert description["backend"]
    assert "train.csv" in description["location"]
    assert "train.csv" in source.location()
    assert all(isinstance(value, str) for value in description.values())
