"""The shipped schemas against the real datasets in ``../shared/data`` (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ccml.core.schema import FeatureSchema, load_schema
from ccml.core.types import ValidatedTable
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.validation import validate
from ccml.storage.local import LocalDataSource
from tests.helpers import fit

PROJECT = Path(__file__).resolve().parents[2]
DATA = PROJECT.parent / "shared" / "data"
ENGAGEMENT = DATA / "course-engagement" / "online_course_engagement_data.csv"
KDD = DATA / "kddcup2015" / "kdd2015_per_enrollment_features.csv"
KDD_SCHEMA = PROJECT / "examples" / "schemas" / "kddcup2015.toml"


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"real dataset not available: {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="module")
def engagement() -> tuple[pd.DataFrame, ValidatedTable]:
    path = _require(ENGAGEMENT)
    dataset = LocalDataSource(path).load()
    return dataset.frame, validate(dataset, load_schema())


def test_engagement_file_validates_with_the_builtin_schema(engagement: tuple[pd.DataFrame, ValidatedTable]) -> None:
    raw, table = engagement
    assert table.rows_read == len(raw)
    assert table.duplicates_dropped == int(raw.duplicated().sum())
    assert table.duplicates_dropped > 0  # the file is known to repeat rows (see its README)
    assert table.rows == len(raw) - table.duplicates_dropped


def test_engagement_target_maps_completed_as_the_schema_says(
    engagement: tuple[pd.DataFrame, ValidatedTable], schema: FeatureSchema
) -> None:
    raw, table = engagement
    deduplicated = raw.drop_duplicates()
    expected = (pd.to_numeric(deduplicated[schema.target.column]) == schema.target.completed_value).sum()
    assert int(table.target.sum()) == int(expected)


def test_small_forest_on_engagement_data_reaches_a_strong_holdout_auc(
    engagement: tuple[pd.DataFrame, ValidatedTable],
) -> None:
    _, table = engagement
    result = fit(RandomForestTrainer({"n_estimators": 30, "n_jobs": 1}), table)
    # The published reference forest is around 0.95 accuracy; a small forest must still be strong.
    assert result.artifact.manifest.evaluation.holdout.roc_auc >= 0.9
    # The file has no demographics: the declared groups are skipped with a note each, not an error.
    fairness = result.artifact.manifest.evaluation.fairness
    assert fairness is not None
    assert fairness.columns == []
    assert [note.split(":")[0] for note in fairness.notes] == [g.name for g in table.schema.groups]


def test_kdd_file_validates_with_the_example_schema() -> None:
    path = _require(KDD)
    schema = load_schema(KDD_SCHEMA)
    dataset = LocalDataSource(path).load()
    table = validate(dataset, schema)
    raw = dataset.frame.drop_duplicates()
    # label 1 means dropout there, so "completed" is label 0.
    assert int(table.target.sum()) == int((pd.to_numeric(raw[schema.target.column]) == 0).sum())
    assert table.rows == len(raw)
    assert set(table.features.columns) == set(schema.feature_names)
