"""Drift maths and the training reference: PSI, bins, statuses, and the manifest's reference field."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccml.core.artifact import Manifest
from ccml.core.drift import (
    EPSILON,
    CategoryReference,
    DriftReference,
    DriftThresholds,
    FeatureBins,
    NumericReference,
    population_stability_index,
)
from ccml.core.errors import ConfigError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.serving.drift import DriftSummary
from ccml.models.serving.records import records_from_frame
from ccml.models.training.reference import build_reference
from ccml.models.training.synthetic import generate
from tests.helpers import shifted_sample

counts_lists = st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=14).filter(
    lambda c: sum(c) > 0
)


def _counts(values: list[int]) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.asarray(values, dtype=np.int64)


# -- PSI -------------------------------------------------------------------------------------
def test_psi_matches_a_hand_computed_case() -> None:
    # Expected half and half, observed 3 to 1: (0.75 - 0.5) ln(1.5) + (0.25 - 0.5) ln(0.5) = 0.25 ln 3.
    assert population_stability_index(np.array([0.5, 0.5]), _counts([3, 1])) == pytest.approx(0.25 * math.log(3))


def test_psi_floors_empty_bins_at_epsilon_instead_of_infinity() -> None:
    psi = population_stability_index(np.array([1.0, 0.0]), _counts([1, 1]))
    hand = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    assert psi == pytest.approx(hand)


def test_psi_is_none_without_observations() -> None:
    assert population_stability_index(np.array([0.5, 0.5]), _counts([0, 0])) is None


@given(expected=counts_lists, observed=st.data())
def test_psi_is_never_negative(expected: list[int], observed: st.DataObject) -> None:
    shares = _counts(expected) / sum(expected)
    drawn = observed.draw(
        st.lists(st.integers(0, 10_000), min_size=len(expected), max_size=len(expected)).filter(lambda c: sum(c) > 0)
    )
    assert population_stability_index(shares, _counts(drawn)) >= 0  # type: ignore[operator]


@given(counts=counts_lists, scale=st.integers(1, 50))
def test_psi_is_zero_when_the_live_distribution_equals_the_reference(counts: list[int], scale: int) -> None:
    shares = _counts(counts) / sum(counts)
    assert population_stability_index(shares, _counts(counts) * scale) == pytest.approx(0.0, abs=1e-12)


# -- bins ------------------------------------------------------------------------------------
def test_numeric_bins_are_left_closed_with_open_outer_bins_and_a_missing_bin() -> None:
    bins = FeatureBins(NumericReference(edges=[1.0, 2.0], shares=[0.2, 0.3, 0.5], missing=0.0))
    assert bins.codes([-1e9, 0.5, 1.0, 1.5, 2.0, 1e9, None, float("nan")]).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert bins.expected.tolist() == [0.2, 0.3, 0.5, 0.0]


def test_category_bins_count_unseen_and_missing_values_apart() -> None:
    bins = FeatureBins(CategoryReference(categories=["a", "b"], shares=[0.5, 0.5], missing=0.0))
    assert bins.codes(["a", "b", "zzz", None, float("nan")]).tolist() == [0, 1, 2, 3, 3]
    assert bins.count(["b", "b", "zzz"]).tolist() == [0, 2, 1, 0]


def test_boolean_bins_take_booleans_and_their_float_codes_alike() -> None:
    bins = FeatureBins(CategoryReference(categories=[False, True], shares=[0.5, 0.5], missing=0.0))
    assert bins.codes([True, False, 1.0, 0.0, None]).tolist() == [1, 0, 1, 0, 3]


def test_a_reference_with_mismatched_bins_is_refused() -> None:
    with pytest.raises(ValueError, match="3 bins"):
        NumericReference(edges=[1.0, 2.0], shares=[1.0], missing=0.0)
    with pytest.raises(ValueError, match="ascending"):
        NumericReference(edges=[2.0, 1.0], shares=[0.3, 0.3, 0.4], missing=0.0)


# -- the training reference --------------------------------------------------------------------
def test_discrete_values_get_deduplicated_edges_above_the_minimum(schema: FeatureSchema) -> None:
    integer = next(f for f in schema.features if f.type == "integer")
    frame = pd.DataFrame({f.name: [None] * 100 for f in schema.features})
    frame[integer.name] = [0.0] * 50 + [1.0] * 30 + [2.0] * 18 + [np.nan] * 2
    spec = build_reference(schema, frame).features[integer.name]
    assert isinstance(spec, NumericReference)
    # Deciles 0,0,0,0,0,1,1,1,2 -> cut points 1 and 2: bins (-inf, 1), [1, 2), [2, inf).
    assert spec.edges == [1.0, 2.0]
    assert spec.shares == [0.5, 0.3, 0.18]
    assert spec.missing == 0.02


def test_the_reference_has_every_feature_with_shares_summing_to_one(
    schema: FeatureSchema, training: TrainingResult
) -> None:
    reference = training.artifact.manifest.reference
    assert reference is not None
    assert list(reference.features) == schema.feature_names
    assert reference.rows == training.artifact.manifest.holdout.train_rows  # the training part, not the holdout
    for name, spec in reference.features.items():
        assert FeatureBins(spec).expected.sum() == pytest.approx(1.0), name
        if isinstance(spec, NumericReference):
            assert 5 <= len(spec.edges) <= 9, name  # ten quantile bins, fewer where values repeat
            assert max(spec.shares) < 0.25, name


def test_a_manifest_without_a_reference_dumps_and_signs_as_before(training: TrainingResult) -> None:
    with_reference = training.artifact.manifest
    without = with_reference.model_copy(update={"reference": None})
    assert b'"reference"' not in without.to_json()
    assert b'"reference"' not in without.signing_payload()
    assert Manifest.from_json(without.to_json()) == without
    assert Manifest.from_json(with_reference.to_json()) == with_reference
    assert without.signed(b"k").signature != with_reference.signed(b"k").signature


# -- a live sample against the reference ----------------------------------------------------
def _report(reference: DriftReference, schema: FeatureSchema, frame: pd.DataFrame) -> dict[str, Any]:
    summary = DriftSummary(reference)
    summary.record_many(records_from_frame(frame, schema))
    return summary.report(DriftThresholds()).model_dump()


def test_a_fresh_sample_of_the_training_distribution_is_ok(schema: FeatureSchema, training: TrainingResult) -> None:
    reference = training.artifact.manifest.reference
    assert reference is not None
    report = _report(reference, schema, generate(schema, 2000, seed=101))
    assert report["status"] == "ok", report
    assert report["rows"] == 2000
    assert {f["status"] for f in report["features"]} == {"ok"}
    assert max(f["psi"] for f in report["features"]) < 0.05


def test_a_shifted_sample_drifts_on_exactly_the_shifted_features(
    schema: FeatureSchema, training: TrainingResult
) -> None:
    reference = training.artifact.manifest.reference
    assert reference is not None
    report = _report(reference, schema, shifted_sample(schema, generate(schema, 2000, seed=101)))
    drifted = {f["feature"] for f in report["features"] if f["status"] == "drift"}
    numeric = next(f.name for f in schema.features if f.type == "numeric")
    categorical = next(f.name for f in schema.features if f.type == "categorical")
    assert report["status"] == "drift"
    assert drifted == {numeric, categorical}
    assert {f["status"] for f in report["features"] if f["feature"] not in drifted} == {"ok"}


@pytest.mark.parametrize(
    ("psi", "rows", "status"),
    [(0.0, 500, "ok"), (0.0999, 500, "ok"), (0.1, 500, "watch"), (0.25, 500, "drift"), (3.0, 499, "too_few_rows")],
)
def test_statuses_follow_the_thresholds_and_the_sample_size(psi: float, rows: int, status: str) -> None:
    assert DriftThresholds(watch=0.1, alert=0.25, min_rows=500).status(psi, rows) == status


def test_with_too_few_rows_the_overall_status_says_so(schema: FeatureSchema, training: TrainingResult) -> None:
    reference = training.artifact.manifest.reference
    assert reference is not None
    report = _report(reference, schema, shifted_sample(schema, generate(schema, 50, seed=5)))
    assert report["status"] == "too_few_rows"
    assert {f["status"] for f in report["features"]} == {"too_few_rows"}
    assert all(f["psi"] is not None for f in report["features"])  # measured, but not judged


def test_the_training_rows_themselves_have_a_psi_of_zero(schema: FeatureSchema, table: ValidatedTable) -> None:
    # The reference and the live summary count with the same bins: the same rows give the same shares.
    reference = build_reference(schema, table.features)
    summary = DriftSummary(reference)
    summary.record_many(records_from_frame(table.features, schema))
    report = summary.report(DriftThresholds(min_rows=1))
    assert [f.psi for f in report.features] == pytest.approx([0.0] * len(schema.features), abs=1e-12)
    assert [f.missing for f in report.features] == pytest.approx([f.reference_missing for f in report.features])


def test_the_alert_threshold_must_be_above_the_watch_threshold() -> None:
    with pytest.raises(ConfigError, match=r"CCML_DRIFT_ALERT_PSI: .*above CCML_DRIFT_WATCH_PSI"):
        Settings.load(drift_watch_psi=0.3, drift_alert_psi=0.2)
    assert Settings(drift_watch_psi=0.05, drift_alert_psi=0.5).drift_thresholds() == DriftThresholds(0.05, 0.5, 500)
