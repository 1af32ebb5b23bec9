from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ccml.core.errors import DataSourceError, DataValidationError, ModelStoreError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.models.training.evaluation import compute_metrics, holdout_split
from ccml.models.training.synthetic import generate
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.validation import validate
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.local import LocalDataSource, LocalModelStore
from tests.helpers import store_state, tree_digest

# A one-split stump: a deliberately worse model than the default forest.
STUMP = {"n_estimators": 1, "max_depth": 1, "bootstrap": False, "n_jobs": 1}


def _workflow(settings: Settings, store: LocalModelStore, params: dict[str, Any] | None = None) -> RetrainWorkflow:
    trainer = RandomForestTrainer.from_settings(settings)
    if params is not None:
        trainer = RandomForestTrainer(params, random_state=settings.random_state)
    return RetrainWorkflow.from_settings(settings, store, trainer)


def _write(frame: pd.DataFrame, path: Path) -> LocalDataSource:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return LocalDataSource(path)


def _noisier(frame: pd.DataFrame, schema: FeatureSchema, share: float, seed: int) -> pd.DataFrame:
    """The same students with ``share`` of their outcomes replaced by coin flips."""
    rng = np.random.default_rng(seed)
    noisy = frame.copy()
    flip = rng.random(len(noisy)) < share
    noisy.loc[flip, schema.target.column] = rng.integers(0, 2, int(flip.sum()))
    return noisy


@pytest.fixture
def store(settings: Settings) -> LocalModelStore:
    return LocalModelStore(settings.models_root)


def test_first_model_is_saved_and_promoted(settings: Settings, store: LocalModelStore, sample_csv: Path) -> None:
    outcome = _workflow(settings, store).run(LocalDataSource(sample_csv))
    assert outcome.promoted
    assert "no champion yet" in outcome.reason
    assert store.resolve() == outcome.version
    manifest = store.manifest(outcome.version)
    assert manifest.promotion is not None
    assert manifest.promotion.promoted
    assert manifest.promotion.challenger_score == manifest.evaluation.holdout.roc_auc
    assert set(outcome.seconds) == {"load", "validate", "train", "export", "compare", "report", "save", "promote"}


def test_first_model_below_the_floor_is_saved_but_not_promoted(
    settings: Settings, store: LocalModelStore, sample_csv: Path
) -> None:
    strict = settings.model_copy(update={"promotion_floor": 1.01})
    outcome = _workflow(strict, store).run(LocalDataSource(sample_csv))
    assert not outcome.promoted
    assert "misses the floor" in outcome.reason
    assert [v.id for v in store.versions()] == [outcome.version]
    assert store.alias() is None


def test_retraining_on_the_same_data_gives_an_equal_model_that_is_promoted(
    settings: Settings, store: LocalModelStore, sample_csv: Path
) -> None:
    exact = settings.model_copy(update={"promotion_tolerance": 0.0})
    first = _workflow(exact, store).run(LocalDataSource(sample_csv))
    second = _workflow(exact, store).run(LocalDataSource(sample_csv))
    promotion = store.manifest(second.version).promotion
    assert promotion is not None
    assert promotion.champion_version == first.version
    assert promotion.champion_score == promotion.challenger_score
    assert second.promoted
    assert store.resolve() == second.version
    assert store.alias() is not None
    assert store.alias().previous == (first.version,)  # type: ignore[union-attr]


def test_worse_model_on_noisier_data_is_not_promoted_and_champion_unchanged(
    settings: Settings, store: LocalModelStore, sample_frame: pd.DataFrame, schema: FeatureSchema, tmp_path: Path
) -> None:
    champion = _workflow(settings, store).run(_write(sample_frame, tmp_path / "clean.csv"))
    noisy = _noisier(generate(schema, 1000, seed=99), schema, share=0.2, seed=1)
    outcome = _workflow(settings, store, params=STUMP).run(_write(noisy, tmp_path / "noisy.csv"))
    promotion = store.manifest(outcome.version).promotion
    assert promotion is not None
    assert promotion.champion_score is not None
    assert promotion.challenger_score < promotion.champion_score - settings.promotion_tolerance
    assert not outcome.promoted
    assert "worse than" in outcome.reason
    assert store.resolve() == champion.version
    assert outcome.version in [v.id for v in store.versions()]  # kept for inspection, just not champion


def test_champion_is_scored_on_the_challengers_holdout(
    settings: Settings, store: LocalModelStore, sample_frame: pd.DataFrame, schema: FeatureSchema, tmp_path: Path
) -> None:
    champion = _workflow(settings, store).run(_write(sample_frame, tmp_path / "a.csv"))
    other = _write(generate(schema, 600, seed=5), tmp_path / "b.csv")
    outcome = _workflow(settings, store).run(other)
    promotion = store.manifest(outcome.version).promotion
    assert promotion is not None
    assert promotion.champion_version == champion.version
    # Rebuild the challenger's holdout from its manifest and score the champion on it.
    table = validate(other.load(), schema, min_rows=settings.min_rows)
    spec = store.manifest(outcome.version).holdout
    _, holdout, rebuilt = holdout_split(table.rows, table.target, spec.fraction, spec.random_state)
    assert rebuilt.index_sha256 == spec.index_sha256
    probabilities = SklearnPredictor(store.load(champion.version)).predict_proba(table.features.iloc[holdout])
    expected = compute_metrics(table.target[holdout], probabilities, settings.decision_threshold).roc_auc
    assert promotion.champion_score == pytest.approx(expected)


def test_force_promotes_a_worse_model_and_says_so(
    settings: Settings, store: LocalModelStore, sample_frame: pd.DataFrame, schema: FeatureSchema, tmp_path: Path
) -> None:
    _workflow(settings, store).run(_write(sample_frame, tmp_path / "clean.csv"))
    noisy = _noisier(generate(schema, 1000, seed=99), schema, share=0.2, seed=1)
    outcome = _workflow(settings, store, params=STUMP).run(_write(noisy, tmp_path / "noisy.csv"), force=True)
    assert outcome.promoted
    assert "forced" in outcome.reason
    promotion = store.manifest(outcome.version).promotion
    assert promotion is not None
    assert promotion.forced
    assert store.resolve() == outcome.version
    assert store.history()[-1].action == "force_promote"


def test_invalid_data_raises_and_leaves_the_store_unchanged(
    settings: Settings, store: LocalModelStore, sample_frame: pd.DataFrame, schema: FeatureSchema, tmp_path: Path
) -> None:
    _workflow(settings, store).run(_write(sample_frame, tmp_path / "clean.csv"))
    before, files_before = store_state(store), tree_digest(settings.models_root)
    bad = sample_frame.astype(object).copy()
    bad.loc[3, schema.features[1].column] = "not a number"
    with pytest.raises(DataValidationError):
        _workflow(settings, store).run(_write(bad, tmp_path / "bad.csv"))
    assert store_state(store) == before
    assert tree_digest(settings.models_root) == files_before


def test_invalid_data_on_an_empty_store_creates_nothing(
    settings: Settings, store: LocalModelStore, sample_frame: pd.DataFrame, schema: FeatureSchema, tmp_path: Path
) -> None:
    one_class = sample_frame.copy()
    one_class[schema.target.column] = schema.target.completed_value
    with pytest.raises(DataValidationError):
        _workflow(settings, store).run(_write(one_class, tmp_path / "one.csv"))
    assert store.versions() == []
    assert not settings.models_root.exists() or tree_digest(settings.models_root) == {}


def test_missing_data_file_raises_data_source_error(settings: Settings, store: LocalModelStore, tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match=r"absent\.csv"):
        _workflow(settings, store).run(LocalDataSource(tmp_path / "absent.csv"))
    assert store.versions() == []


class _SaveFails(LocalModelStore):
    def _write_new(self, key: str, data: bytes) -> None:
        if key.startswith("versions/"):
            raise OSError("disk full")
        super()._write_new(key, data)


def test_store_failing_on_save_leaves_the_champion_intact(
    settings: Settings, sample_frame: pd.DataFrame, tmp_path: Path
) -> None:
    store = LocalModelStore(settings.models_root)
    champion = _workflow(settings, store).run(_write(sample_frame, tmp_path / "clean.csv"))
    failing = _SaveFails(settings.models_root)
    with pytest.raises(ModelStoreError, match="disk full"):
        _workflow(settings, failing).run(_write(sample_frame, tmp_path / "again.csv"))
    assert [v.id for v in store.versions()] == [champion.version]
    assert store.resolve() == champion.version
    assert store.load().version == champion.version


def test_champion_from_another_schema_does_not_block_promotion(
    settings: Settings, store: LocalModelStore, sample_frame: pd.DataFrame, schema: FeatureSchema, tmp_path: Path
) -> None:
    _workflow(settings, store).run(_write(sample_frame, tmp_path / "a.csv"))
    renamed = schema.model_copy(update={"description": "changed"}, deep=True)
    feature = renamed.features[0].model_copy(update={"description": "different words"})
    renamed = renamed.model_copy(update={"features": [feature, *renamed.features[1:]]})
    workflow = _workflow(settings, store)
    workflow.schema = renamed
    outcome = workflow.run(_write(sample_frame, tmp_path / "b.csv"))
    assert "another feature schema" in outcome.reason
    assert outcome.promoted


def test_summary_is_json_ready_with_version_promotion_and_metrics(
    settings: Settings, store: LocalModelStore, sample_csv: Path, sample_frame: pd.DataFrame
) -> None:
    summary = _workflow(settings, store).run(LocalDataSource(sample_csv)).summary()
    assert isinstance(summary["version"], str)
    assert isinstance(summary["promoted"], bool)
    assert summary["reason"]
    assert 0.5 < summary["metrics"]["roc_auc"] <= 1
    json.dumps(summary)
    assert summary["rows_used"] + summary["duplicates_dropped"] == len(sample_frame)


def test_holdout_without_the_rare_class_is_saved_unpromoted_and_the_store_stays_readable(
    settings: Settings, sample_frame: pd.DataFrame, schema: FeatureSchema, tmp_path: Path
) -> None:
    store = LocalModelStore(settings.models_root, signing_key=b"key")
    rare = sample_frame.head(60).copy()
    completed = schema.target.completed_value
    rare[schema.target.column] = 1 - int(completed)
    rare.loc[rare.index[:2], schema.target.column] = completed  # 2 completers: validation's minimum
    outcome = _workflow(settings, store).run(_write(rare, tmp_path / "rare.csv"))
    assert not outcome.promoted
    assert "undefined" in outcome.reason
    # NaN scores must survive the manifest's JSON round trip (and its signature).
    assert [v.id for v in store.versions()] == [outcome.version]
    assert np.isnan(store.load(outcome.version).manifest.evaluation.holdout.roc_auc)
