from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ccml.core.artifact import MODEL_FILE
from ccml.core.errors import ConfigError, TrainingError
from ccml.core.registry import TRAINERS
from ccml.core.settings import Settings
from ccml.core.types import ValidatedTable
from ccml.models.training.fitting import EvaluationPlan
from ccml.models.training.trainers import (
    HistGradientBoostingTrainer,
    LogisticRegressionTrainer,
    RandomForestTrainer,
    SklearnTrainer,
)
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.local import LocalModelStore
from tests.helpers import FAST_PARAMS, fit

TRAINER_CLASSES: list[type[SklearnTrainer]] = [
    RandomForestTrainer,
    HistGradientBoostingTrainer,
    LogisticRegressionTrainer,
]


def _trainer(cls: type[SklearnTrainer], **kwargs: Any) -> SklearnTrainer:
    return cls(FAST_PARAMS[cls.name], **kwargs)


@pytest.mark.parametrize("cls", TRAINER_CLASSES, ids=lambda cls: cls.name)
def test_same_data_and_random_state_give_identical_predictions(
    cls: type[SklearnTrainer], table: ValidatedTable
) -> None:
    first = fit(_trainer(cls), table)
    second = fit(_trainer(cls), table)
    np.testing.assert_array_equal(
        first.artifact.pipeline.predict_proba(table.features), second.artifact.pipeline.predict_proba(table.features)
    )
    assert first.artifact.manifest.evaluation == second.artifact.manifest.evaluation


@pytest.mark.parametrize("cls", TRAINER_CLASSES, ids=lambda cls: cls.name)
def test_trainer_learns_signal_from_synthetic_data(cls: type[SklearnTrainer], table: ValidatedTable) -> None:
    metrics = fit(_trainer(cls), table).artifact.manifest.evaluation.holdout
    assert metrics.roc_auc > 0.75
    assert metrics.n_rows == round(table.rows * 0.2)


@pytest.mark.parametrize("cls", TRAINER_CLASSES, ids=lambda cls: cls.name)
def test_unknown_hyper_parameter_raises_config_error(cls: type[SklearnTrainer]) -> None:
    with pytest.raises(ConfigError, match=r"unknown .* parameter\(s\) \['not_a_param'\]"):
        cls({"not_a_param": 1})


def test_unknown_hyper_parameter_in_settings_fails_when_building() -> None:
    settings = Settings(trainer="logistic_regression", trainer_params={"n_estimators": 10})
    with pytest.raises(ConfigError, match="n_estimators"):
        TRAINERS.get(settings.trainer)(settings)


def test_settings_reach_the_trainer_and_the_workflow_s_evaluation(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        trainer_params={"n_estimators": 7},
        holdout_fraction=0.3,
        cv_folds=3,
        random_state=5,
        decision_threshold=0.4,
    )
    trainer = RandomForestTrainer.from_settings(settings)
    assert trainer.params["n_estimators"] == 7
    assert trainer.params["random_state"] == 5
    workflow = RetrainWorkflow.from_settings(settings, LocalModelStore(tmp_path / "store"), trainer)
    assert workflow.evaluation == EvaluationPlan(holdout_fraction=0.3, cv_folds=3, random_state=5, threshold=0.4)


def test_user_parameters_override_defaults_and_random_state_is_fixed() -> None:
    trainer = RandomForestTrainer({"n_estimators": 3})
    assert trainer.params["n_estimators"] == 3
    assert trainer.params["random_state"] == trainer.random_state
    assert LogisticRegressionTrainer({"random_state": 1}, random_state=9).params["random_state"] == 1


def test_different_random_state_gives_a_different_forest(table: ValidatedTable) -> None:
    first = fit(RandomForestTrainer(FAST_PARAMS["random_forest"], random_state=1), table)
    second = fit(RandomForestTrainer(FAST_PARAMS["random_forest"], random_state=2), table)
    assert not np.array_equal(
        first.artifact.pipeline.predict_proba(table.features), second.artifact.pipeline.predict_proba(table.features)
    )


def test_manifest_records_trainer_params_data_and_files(table: ValidatedTable) -> None:
    trainer = _trainer(RandomForestTrainer)
    result = fit(trainer, table)
    manifest = result.artifact.manifest
    assert manifest.trainer == "random_forest"
    assert manifest.params == trainer.params
    assert manifest.schema_fingerprint == table.schema.fingerprint()
    assert manifest.data.fingerprint == table.fingerprint
    assert manifest.data.rows_used == table.rows
    assert manifest.data.positives == int(table.target.sum())
    assert manifest.holdout.train_rows + manifest.holdout.holdout_rows == table.rows
    assert manifest.libraries["scikit-learn"]
    assert MODEL_FILE in manifest.files
    assert manifest.version is None  # a version id is given by the store, not the trainer


def test_holdout_rows_are_returned_for_the_gate(table: ValidatedTable) -> None:
    result = fit(_trainer(RandomForestTrainer), table)
    spec = result.artifact.manifest.holdout
    assert len(result.holdout_features) == len(result.holdout_target) == spec.holdout_rows
    assert list(result.holdout_features.columns) == table.schema.feature_names


def test_cross_validation_is_recorded_when_enabled(table: ValidatedTable) -> None:
    result = fit(RandomForestTrainer({"n_estimators": 5, "n_jobs": 1}), table, cv_folds=2)
    cv = result.artifact.manifest.evaluation.cross_validation
    assert cv is not None
    assert cv.folds == 2
    assert fit(_trainer(RandomForestTrainer), table).artifact.manifest.evaluation.cross_validation is None


def test_random_forest_predicts_single_threaded_after_fit(table: ValidatedTable) -> None:
    result = fit(RandomForestTrainer({"n_estimators": 5, "n_jobs": 2}), table)
    assert result.artifact.pipeline.named_steps["clf"].n_jobs is None


def test_logistic_regression_scales_numeric_features(table: ValidatedTable) -> None:
    result = fit(_trainer(LogisticRegressionTrainer), table)
    numeric = result.artifact.pipeline.named_steps["features"].named_transformers_["numeric"]
    assert "scale" in numeric.named_steps


def test_estimator_failure_is_wrapped_in_training_error(table: ValidatedTable) -> None:
    trainer = RandomForestTrainer({"n_estimators": 5, "max_depth": -3})
    with pytest.raises(TrainingError, match="random_forest training failed"):
        fit(trainer, table)


# The large-table default: a per-tree row cap (max_samples) once the training part is large.


def test_random_forest_caps_rows_per_tree_only_above_the_threshold() -> None:
    trainer = RandomForestTrainer()
    cap = RandomForestTrainer.max_rows_per_tree
    assert trainer.params_for(cap) == trainer.params  # small tables: exactly the defaults
    assert "max_samples" not in trainer.params_for(cap)
    large = trainer.params_for(cap + 1)
    assert large == {**trainer.params, "max_samples": cap}


def test_random_forest_on_a_million_rows_grows_trees_on_a_bounded_sample() -> None:
    # 1,000,000 rows with a 0.2 holdout: every tree must see a bounded bootstrap sample, or
    # fit time, node count and ONNX export memory grow with the table (684 s / 5.6 GB uncapped).
    params = RandomForestTrainer().params_for(800_000)
    assert isinstance(params["max_samples"], int)
    assert 10_000 <= params["max_samples"] <= 100_000
    assert params["min_samples_leaf"] == RandomForestTrainer.default_params["min_samples_leaf"]
    assert params["max_features"] is None
    assert params["n_estimators"] == RandomForestTrainer.default_params["n_estimators"]


def test_engagement_sized_tables_keep_the_tuned_defaults() -> None:
    # The engagement data: 8,123 rows after duplicates, about 6,500 in the training part.
    assert RandomForestTrainer().params_for(6_500) == RandomForestTrainer().params


@pytest.mark.parametrize("chosen", [None, 0.5, 1_000_000])
def test_users_max_samples_is_kept_whatever_the_table_size(chosen: float | None) -> None:
    trainer = RandomForestTrainer.from_settings(Settings(trainer_params={"max_samples": chosen}))
    assert trainer.params_for(10_000_000)["max_samples"] == chosen


def test_no_cap_without_bootstrap() -> None:
    # scikit-learn rejects max_samples without bootstrap: every tree sees every row then.
    assert "max_samples" not in RandomForestTrainer({"bootstrap": False}).params_for(10_000_000)
    assert RandomForestTrainer({"bootstrap": True}).params_for(10_000_000)["max_samples"] == (
        RandomForestTrainer.max_rows_per_tree
    )


@pytest.mark.parametrize("cls", [HistGradientBoostingTrainer, LogisticRegressionTrainer], ids=lambda cls: cls.name)
def test_other_trainers_do_not_adapt_params_to_the_size(cls: type[SklearnTrainer]) -> None:
    trainer = cls()
    assert trainer.params_for(10_000_000) == trainer.params


def test_capped_forest_is_fitted_recorded_and_bounded(table: ValidatedTable, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RandomForestTrainer, "max_rows_per_tree", 100)
    trainer = RandomForestTrainer({"n_estimators": 5, "n_jobs": 1})
    result = fit(trainer, table)
    manifest = result.artifact.manifest
    assert manifest.params == {**trainer.params, "max_samples": 100}
    forest = result.artifact.pipeline.named_steps["clf"]
    assert forest.max_samples == 100
    # 100 bootstrap rows and at least 10 rows per leaf: at most 10 leaves, 19 nodes a tree.
    assert all(tree.tree_.node_count <= 19 for tree in forest.estimators_)
    assert manifest.evaluation.holdout.roc_auc > 0.6


def test_uncapped_forest_records_the_params_as_given(table: ValidatedTable) -> None:
    trainer = RandomForestTrainer({"n_estimators": 5, "n_jobs": 1})
    result = fit(trainer, table)
    assert result.artifact.manifest.params == trainer.params
    assert result.artifact.pipeline.named_steps["clf"].max_samples is None
