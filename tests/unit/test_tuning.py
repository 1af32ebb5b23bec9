"""``ccml tune``'s search: a seed fixes the candidates, defaults come first, the budget is kept."""

from __future__ import annotations

import tomllib

import pytest

from ccml.core.settings import Settings
from ccml.core.types import ValidatedTable
from ccml.models.training.trainers import HistGradientBoostingTrainer, LogisticRegressionTrainer, SklearnTrainer
from ccml.models.training.tuning import Candidate, TuningResult, candidates, settings_toml, tune

SPACES = {
    "logistic_regression": {"C": [0.01, 1.0, 100.0]},
    "hist_gradient_boosting": {"max_iter": [20, 40], "learning_rate": [0.1, 0.3]},
}
TRAINERS: dict[str, type[SklearnTrainer]] = {
    "logistic_regression": LogisticRegressionTrainer,
    "hist_gradient_boosting": HistGradientBoostingTrainer,
}


def build(candidate: Candidate) -> SklearnTrainer:
    return TRAINERS[candidate.trainer](candidate.params, random_state=0, calibration=candidate.calibration or "auto")  # type: ignore[arg-type]


def test_each_trainers_defaults_come_first_then_draws_in_turn() -> None:
    order = candidates(SPACES, seed=1)
    assert order[:2] == [Candidate("logistic_regression", {}), Candidate("hist_gradient_boosting", {})]
    assert [c.trainer for c in order[2:6]] == ["logistic_regression", "hist_gradient_boosting"] * 2
    assert len(order) == 2 + 3 + 4
    assert len({c.key() for c in order}) == len(order)


def test_the_same_seed_gives_the_same_candidates_and_another_seed_another_order() -> None:
    assert candidates(SPACES, seed=7) == candidates(SPACES, seed=7)
    orders = {tuple(c.key() for c in candidates(SPACES, seed=seed)) for seed in range(6)}
    assert len(orders) > 1


def test_tuning_scores_candidates_reproducibly_best_first(table: ValidatedTable) -> None:
    runs = [tune(table, build, SPACES, folds=3, budget_s=60, seed=3, max_candidates=5) for _ in range(2)]
    boards = [[(s.candidate, s.mean, s.std) for s in run.leaderboard] for run in runs]
    assert boards[0] == boards[1]
    means = [s.mean for s in runs[0].leaderboard]
    assert means == sorted(means, reverse=True)
    assert all(0 <= s.std < 0.5 for s in runs[0].leaderboard)


def test_a_spent_budget_still_scores_each_trainers_first_candidate_and_skips_the_rest(table: ValidatedTable) -> None:
    result = tune(table, build, SPACES, folds=2, budget_s=1e-9, seed=0)
    assert sorted(s.candidate.trainer for s in result.leaderboard) == sorted(SPACES)
    assert all(s.candidate.params == {} for s in result.leaderboard)
    assert result.skipped == len(candidates(SPACES, seed=0)) - 2


def test_a_loss_metric_ranks_the_lowest_first(table: ValidatedTable) -> None:
    result = tune(table, build, SPACES, metric="brier", folds=2, budget_s=60, max_candidates=4)
    losses = [s.mean for s in result.leaderboard]
    assert losses == sorted(losses)


def test_calibration_is_searched_where_the_metric_can_gain_from_it(table: ValidatedTable) -> None:
    ranking = tune(table, build, SPACES, metric="roc_auc", folds=2, budget_s=60, max_candidates=6)
    assert all(s.candidate.calibration is None for s in ranking.leaderboard)
    loss = tune(table, build, SPACES, metric="brier", folds=2, budget_s=60, max_candidates=6)
    scored = {(s.candidate.trainer, s.candidate.calibration): s.mean for s in loss.leaderboard}
    # The defaults, then each calibrated, round-robin over the two trainers: 6 candidates.
    assert set(scored) == {(t, c) for t in SPACES for c in (None, "sigmoid", "isotonic")}
    # Each calibration was really fitted: its cross-validated Brier differs from the uncalibrated one.
    assert all(scored[(t, c)] != scored[(t, None)] for t in SPACES for c in ("sigmoid", "isotonic"))
    calibrated = [s for s in loss.leaderboard if s.candidate.calibration]
    winner_file = settings_toml(TuningResult("brier", 2, calibrated, 1.0, 60.0), source="sample.csv")
    assert tomllib.loads(winner_file)["calibration"] == calibrated[0].candidate.calibration


def test_the_settings_file_holds_the_winner_as_settings_read_it(table: ValidatedTable) -> None:
    result = tune(table, build, SPACES, folds=2, budget_s=60, max_candidates=4)
    values = tomllib.loads(settings_toml(result, source="sample.csv"))
    assert values["trainer"] == result.winner.candidate.trainer
    import json

    params = json.loads(values["trainer_params"])
    assert params == result.winner.candidate.params
    assert Settings(trainer=values["trainer"], trainer_params=params).trainer_params == params


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_every_search_space_value_is_a_parameter_the_estimator_takes(trainer: str) -> None:
    space = TRAINERS[trainer].search_space
    assert space, f"{trainer} has no search space"
    for name, values in space.items():
        for value in values:
            TRAINERS[trainer]({name: value})  # unknown names raise ConfigError
