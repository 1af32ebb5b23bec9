from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.training.evaluation import (
    HIGHER_IS_BETTER,
    compute_metrics,
    cross_validate,
    holdout_split,
    metric_value,
)
from ccml.models.training.trainers import RandomForestTrainer
from tests.helpers import FAST_PARAMS

RNG = np.random.default_rng(0)
TARGET = (RNG.random(400) < 0.4).astype(np.int8)


def test_perfect_scores_give_perfect_metrics() -> None:
    metrics = compute_metrics(TARGET, TARGET.astype(float))
    assert metrics.roc_auc == 1.0
    assert metrics.pr_auc == 1.0
    assert metrics.f1 == 1.0
    assert metrics.accuracy == 1.0
    assert metrics.brier == 0.0
    assert metrics.confusion_matrix.fp == metrics.confusion_matrix.fn == 0


def test_inverted_scores_give_zero_roc_auc() -> None:
    metrics = compute_metrics(TARGET, 1.0 - TARGET.astype(float))
    assert metrics.roc_auc == 0.0
    assert metrics.accuracy == 0.0
    assert metrics.brier == 1.0


def test_constant_scores_give_chance_roc_auc() -> None:
    metrics = compute_metrics(TARGET, np.full(len(TARGET), 0.3))
    assert metrics.roc_auc == 0.5
    assert metrics.recall == 0.0
    assert metrics.precision == 0.0  # zero_division=0, no warning turned into an error


def test_confusion_matrix_counts_add_up_at_the_threshold() -> None:
    scores = RNG.random(len(TARGET))
    for threshold in (0.2, 0.5, 0.8):
        metrics = compute_metrics(TARGET, scores, threshold)
        matrix = metrics.confusion_matrix
        assert matrix.tn + matrix.fp + matrix.fn + matrix.tp == len(TARGET)
        assert matrix.tp + matrix.fp == int((scores >= threshold).sum())
        assert matrix.tp + matrix.fn == metrics.positives == int(TARGET.sum())
        assert metrics.threshold == threshold
        assert metrics.accuracy == pytest.approx((matrix.tp + matrix.tn) / len(TARGET))


def test_metrics_are_bounded() -> None:
    metrics = compute_metrics(TARGET, RNG.random(len(TARGET)))
    for name in HIGHER_IS_BETTER:
        assert 0.0 <= metric_value(metrics, name) <= 1.0, name


def test_single_class_ranking_metrics_are_nan_not_errors() -> None:
    ones = np.ones(20, dtype=np.int8)
    metrics = compute_metrics(ones, np.linspace(0, 1, 20))
    assert math.isnan(metrics.roc_auc)
    assert math.isnan(metrics.pr_auc)


def test_holdout_split_is_stratified_disjoint_and_reproducible() -> None:
    train, holdout, spec = holdout_split(len(TARGET), TARGET, 0.25, random_state=3)
    again_train, again_holdout, again_spec = holdout_split(len(TARGET), TARGET, 0.25, random_state=3)
    np.testing.assert_array_equal(holdout, again_holdout)
    np.testing.assert_array_equal(train, again_train)
    assert spec == again_spec
    assert set(train).isdisjoint(holdout)
    assert len(train) + len(holdout) == len(TARGET)
    assert spec.train_rows == len(train)
    assert spec.holdout_rows == len(holdout)
    assert spec.index_sha256 == hashlib.sha256(np.sort(holdout).astype(np.int64).tobytes()).hexdigest()
    assert TARGET[holdout].mean() == pytest.approx(TARGET.mean(), abs=0.02)


def test_holdout_split_changes_with_random_state() -> None:
    _, first, _ = holdout_split(len(TARGET), TARGET, 0.25, random_state=1)
    _, second, _ = holdout_split(len(TARGET), TARGET, 0.25, random_state=2)
    assert not np.array_equal(first, second)


def test_cross_validation_reports_mean_and_std_per_metric(training: TrainingResult, table: ValidatedTable) -> None:
    folds: list[int] = []
    trainer = RandomForestTrainer(FAST_PARAMS["random_forest"])
    cv = cross_validate(
        lambda features, target: trainer.fit(features, target, table.schema),
        table.features,
        table.target,
        folds=3,
        random_state=0,
        threshold=0.5,
        progress=lambda fold, _metrics: folds.append(fold),
    )
    assert folds == [1, 2, 3]
    assert cv.folds == 3
    assert set(cv.mean) == set(cv.std) == set(HIGHER_IS_BETTER)
    assert 0.5 < cv.mean["roc_auc"] <= 1.0
    assert all(value >= 0 for value in cv.std.values())
