"""Fixtures that run each contract suite once per backend listed in ``backends.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ccml.core.contracts import ModelStore
from tests.contract.backends import (
    DATA_SOURCE_BACKENDS,
    MODEL_STORE_BACKENDS,
    DataSourceBackend,
    StoreOpener,
)


@pytest.fixture(params=sorted(MODEL_STORE_BACKENDS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    with MODEL_STORE_BACKENDS[request.param](tmp_path) as opener:
        yield opener


@pytest.fixture
def model_store(open_store: StoreOpener) -> ModelStore:
    return open_store()


@pytest.fixture(params=sorted(DATA_SOURCE_BACKENDS))
def files(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DataSourceBackend]:
    with DATA_SOURCE_BACKENDS[request.param](tmp_path) as backend:
        yield backend
