"""What every ``Trainer`` guarantees, for each trainer the registry knows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ccml.core.artifact import MODEL_FILE, sha256_hex
from ccml.core.contracts import Trainer
from ccml.core.errors import ConfigError, TrainingError
from ccml.core.model_files import ARTIFACT_FILES
from ccml.core.registry import TRAINERS
from ccml.core.settings import Settings
from ccml.core.types import ValidatedTable
from ccml.models.training.fitting import EvaluationPlan, train_and_evaluate
from tests.helpers import FAST_PARAMS, fit


@pytest.fixture(params=TRAINERS.names())
def trainer_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _build(name: str, **overrides: object) -> Trainer:
    settings = Settings(trainer=name, trainer_params=FAST_PARAMS.get(name, {}), **overrides)
    return TRAINERS.get(name)(settings)


def test_fit_returns_an_artifact_with_honest_holdout_metrics(trainer_name: str, table: ValidatedTable) -> None:
    trainer = _build(trainer_name)
    result = fit(trainer, table)
    manifest = result.artifact.manifest
    assert manifest.trainer == trainer_name == trainer.name
    holdout = manifest.evaluation.holdout
    assert holdout.n_rows == len(result.holdout_target) == manifest.holdout.holdout_rows
    assert holdout.positives == int(result.holdout_target.sum())
    assert 0.5 < holdout.roc_auc <= 1.0
    assert 0.0 <= holdout.brier <= 1.0


def test_artifact_files_match_their_checksums(trainer_name: str, table: ValidatedTable) -> None:
    artifact = fit(_build(trainer_name), table).artifact
    assert MODEL_FILE in artifact.files
    for name, entry in artifact.manifest.files.items():
        assert entry.sha256 == sha256_hex(artifact.files[name])
        assert entry.size == len(artifact.files[name])
    artifact.verify()


def test_same_data_and_settings_give_the_same_model(trainer_name: str, table: ValidatedTable) -> None:
    first = fit(_build(trainer_name), table)
    second = fit(_build(trainer_name), table)
    np.testing.assert_array_equal(
        first.artifact.pipeline.predict_proba(first.holdout_features),
        second.artifact.pipeline.predict_proba(second.holdout_features),
    )


def test_pipeline_accepts_validated_features_and_records(trainer_name: str, table: ValidatedTable) -> None:
    pipeline = fit(_build(trainer_name), table).artifact.pipeline
    assert pipeline.predict_proba(table.features.head(5)).shape == (5, 2)
    assert pipeline.predict_proba([table.schema.example_record()]).shape == (1, 2)


def test_holdout_fraction_setting_sizes_the_holdout(trainer_name: str, table: ValidatedTable) -> None:
    result = train_and_evaluate(_build(trainer_name), table, EvaluationPlan(holdout_fraction=0.3))
    assert result.artifact.manifest.holdout.holdout_rows == pytest.approx(table.rows * 0.3, abs=1)


def test_unknown_hyper_parameter_is_a_config_error(trainer_name: str) -> None:
    settings = Settings(trainer=trainer_name, trainer_params={"surely_not_a_parameter": 1})
    with pytest.raises(ConfigError, match="surely_not_a_parameter"):
        TRAINERS.get(trainer_name)(settings)


def test_failure_inside_fit_is_a_training_error(trainer_name: str, table: ValidatedTable) -> None:
    numeric = next(f.name for f in table.schema.features if f.type == "numeric")
    features = table.features.copy()
    features[numeric] = features[numeric].astype(object)
    features.loc[0, numeric] = "not a number"  # what validation would have refused
    broken = dataclasses.replace(table, features=features)
    with pytest.raises(TrainingError, match=f"{trainer_name} training failed"):
        _build(trainer_name).fit(broken.features, broken.target, broken.schema)


def test_fit_gives_a_model_that_scores_rows_and_names_only_known_files(
    trainer_name: str, table: ValidatedTable
) -> None:
    model = _build(trainer_name).fit(table.features, table.target, table.schema)
    probabilities = model.predict_proba(table.features.head(7))
    assert probabilities.shape == (7,)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert set(model.files()) <= ARTIFACT_FILES
    assert isinstance(model.params, dict)
