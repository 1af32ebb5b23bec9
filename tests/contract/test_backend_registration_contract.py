"""Every contract backend is also reachable the way users reach it: its registry name and its settings."""

from __future__ import annotations

import pandas as pd

from ccml.core.components import build_data_source, build_model_store
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult
from tests.contract.backends import DataSourceBackend, StoreOpener
from tests.helpers import csv_bytes


def test_the_registry_builds_the_store_its_settings_name(open_store: StoreOpener, training: TrainingResult) -> None:
    saved = open_store().save(training.artifact)
    name = open_store().describe()["backend"]
    built = build_model_store(Settings.load(storage=name, **open_store.settings))
    assert built.describe() == open_store().describe()
    assert [version.id for version in built.versions()] == [saved.id]


def test_the_registry_builds_the_source_a_location_names(files: DataSourceBackend, sample_frame: pd.DataFrame) -> None:
    files.put("train.csv", csv_bytes(sample_frame.head(20)))
    built = build_data_source(Settings.load(), files.location("train.csv"))
    assert built.describe() == files.source("train.csv").describe()
    pd.testing.assert_frame_equal(built.load().frame, files.source("train.csv").load().frame)
