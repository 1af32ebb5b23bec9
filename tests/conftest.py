"""Shared fixtures: the built-in schema, small synthetic data, isolated settings and stores.

Training data stays small (1,000 rows) and forests stay small (``FAST_PARAMS``), so the whole
suite runs in well under three minutes on two cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import structlog
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from threadpoolctl import threadpool_limits

from ccml.core.schema import FeatureSchema, load_schema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.training.synthetic import generate
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.validation import validate
from ccml.storage.local import LocalModelStore
from tests.helpers import FAST_PARAMS, dataset_from_frame, fit

# The autouse environment fixture below is function-scoped; it only removes CCML_* variables
# and changes directory, which is safe to share between the examples of one test.
_SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
hypothesis_settings.register_profile("default", max_examples=25, deadline=None, suppress_health_check=_SUPPRESSED)
hypothesis_settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=_SUPPRESSED)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SAMPLE_ROWS = 1000
SAMPLE_SEED = 11


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_math() -> Iterator[None]:
    """OpenMP/BLAS threads cost more than they save on these small tables, and on a busy
    two-core machine their spin-waiting makes histogram gradient boosting 50x slower."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Entry points (the CLI, the handler) configure structlog and bind context for the process,
    and a CLI run under CliRunner points it at a stream that is closed afterwards: undo both."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
    structlog.contextvars.clear_contextvars()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CCML_* variable or ``.env`` file of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("CCML_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def schema() -> FeatureSchema:
    return load_schema()


@pytest.fixture(scope="session")
def sample_frame(schema: FeatureSchema) -> pd.DataFrame:
    """1,000 synthetic students in the schema's CSV columns. Copy before changing it."""
    return generate(schema, SAMPLE_ROWS, SAMPLE_SEED)


@pytest.fixture
def sample_csv(tmp_path: Path, sample_frame: pd.DataFrame) -> Path:
    path = tmp_path / "data" / "train.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    sample_frame.to_csv(path, index=False)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", min_rows=50, trainer_params=FAST_PARAMS["random_forest"])


@pytest.fixture
def store(tmp_path: Path) -> LocalModelStore:
    return LocalModelStore(tmp_path / "store")


@pytest.fixture(scope="session")
def table(schema: FeatureSchema, sample_frame: pd.DataFrame) -> ValidatedTable:
    return validate(dataset_from_frame(sample_frame), schema)


@pytest.fixture(scope="session")
def training(table: ValidatedTable) -> TrainingResult:
    """One small random forest fitted on the sample, shared by read-only tests."""
    return fit(RandomForestTrainer(FAST_PARAMS["random_forest"]), table)


@pytest.fixture
def saved_store(store: LocalModelStore, training: TrainingResult) -> LocalModelStore:
    """A store holding one version, promoted to champion."""
    version = store.save(training.artifact)
    store.promote(version.id, reason="first")
    return store
