"""Input drift: each feature's training distribution, its bins, and the population stability index.

A version's manifest keeps, per feature, how its training rows fell into a fixed set of bins
(``DriftReference``): quantile bins for numbers, one bin per category for categories, and the
share of rows without a value. Live inputs are counted into the same bins (``FeatureBins``, NumPy
only: the API uses it without the training stack) and compared with the reference by the
population stability index over the values present::

    PSI = sum over bins of (a - e) * ln(a / e)

with ``e`` the bin's share of the training rows that have a value and ``a`` its share of the live
ones, each floored at ``EPSILON`` so an empty bin adds a large but finite term instead of
infinity. Every term is >= 0 (``a - e`` and ``ln(a / e)`` share their sign), so PSI >= 0, and 0
only when the floored shares agree bin for bin. Missing values are compared apart (their live
share next to the training one): the API requires every field, so its inputs never miss one,
and a missing bin in the PSI would read as drift on every feature of data with gaps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Annotated, Any, Final, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

# The floor of a bin's share in the PSI: one row in ten thousand.
EPSILON: Final = 1e-4
FeatureStatus = Literal["ok", "watch", "drift", "too_few_rows"]
OverallStatus = Literal["ok", "watch", "drift", "too_few_rows", "no_reference"]
_BY_SEVERITY: Final[tuple[OverallStatus, ...]] = ("ok", "watch", "drift")
Counts = np.ndarray[Any, np.dtype[np.int64]]
Shares = np.ndarray[Any, np.dtype[np.float64]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericReference(_Model):
    """A number's training distribution: bin ``i`` holds ``edges[i-1] <= x < edges[i]``, the outer bins open-ended."""

    kind: Literal["numeric"] = "numeric"
    edges: list[float] = Field(description="Ascending cut points between the bins (quantiles of the training rows).")
    shares: list[float] = Field(description="Share of the training rows in each bin: one more than the edges.")
    missing: float = Field(ge=0, le=1, description="Share of the training rows without a value.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(self.shares) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges make {len(self.edges) + 1} bins, not {len(self.shares)}")
        if not all(math.isfinite(edge) for edge in self.edges) or any(
            low >= high for low, high in zip(self.edges, self.edges[1:], strict=False)
        ):
            raise ValueError("edges must be finite and strictly ascending")
        return self


class CategoryReference(_Model):
    """A categorical, ordinal or boolean feature's training distribution: the share of each value."""

    kind: Literal["categories"] = "categories"
    categories: list[bool | int | str]
    shares: list[float] = Field(description="Share of the training rows with each category, in order.")
    unseen: float = Field(0.0, ge=0, le=1, description="Share of the training rows with a value not listed.")
    missing: float = Field(ge=0, le=1, description="Share of the training rows without a value.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(self.shares) != len(self.categories):
            raise ValueError(f"{len(self.categories)} categories but {len(self.shares)} shares")
        return self


FeatureReference = Annotated[NumericReference | CategoryReference, Field(discriminator="kind")]


class DriftReference(_Model):
    """Every feature's training distribution, from the rows the model was fitted on (not the holdout)."""

    rows: int = Field(ge=0, description="Training rows the shares were counted on.")
    features: dict[str, FeatureReference]


class FeatureBins:
    """How one feature's values fall into its reference's bins, as one flat vector of counts.

    The layout: a number's value bins then "missing"; a category's categories, then "unseen",
    then "missing". ``expected`` holds the reference's shares in the same layout.
    """

    def __init__(self, reference: NumericReference | CategoryReference) -> None:
        self.reference = reference
        if isinstance(reference, NumericReference):
            self._edges: Shares | None = np.asarray(reference.edges, dtype=np.float64)
            self._index: dict[object, int] = {}
            shares = [*reference.shares, reference.missing]
        else:
            self._edges = None
            # A bool and an int of equal value are the same dict key: True finds category 1.0 too.
            self._index = {category: position for position, category in enumerate(reference.categories)}
            shares = [*reference.shares, reference.unseen, reference.missing]
        self.size = len(shares)
        self.missing = self.size - 1
        self._index[None] = self.missing
        self.expected: Shares = np.asarray(shares, dtype=np.float64)
        present = self.expected[: self.missing]
        total = float(present.sum())
        # The value bins' shares among the training rows with a value (what PSI compares).
        self.expected_present: Shares = present / total if total > 0 else present

    def codes(self, values: Sequence[object]) -> np.ndarray[Any, np.dtype[np.intp]]:
        """The bin of each value (None and NaN: the missing bin; a category not listed: the unseen bin)."""
        if self._edges is not None:
            numbers = np.array(values, dtype=np.float64)  # None becomes NaN
            codes = np.searchsorted(self._edges, numbers, side="right")
            codes[np.isnan(numbers)] = self.missing
            return codes
        unseen = self.missing - 1
        # One dict lookup per value in C (None is a key: the missing bin); only the few values that
        # land in "unseen" are looked at again, since NaN (a float, so never a key) means missing.
        codes = np.fromiter(map(self._index.get, values, repeat(unseen)), dtype=np.intp, count=len(values))
        for position in np.flatnonzero(codes == unseen).tolist():
            value = values[position]
            if value != value:
                codes[position] = self.missing
        return codes

    def count(self, values: Sequence[object]) -> Counts:
        """How many of ``values`` fall into each bin."""
        return np.bincount(self.codes(values), minlength=self.size).astype(np.int64)


def population_stability_index(expected: Shares, observed: Counts, epsilon: float = EPSILON) -> float | None:
    """PSI of observed counts against expected shares (see the module docstring); None without observations."""
    total = int(observed.sum())
    if total == 0:
        return None
    actual = np.maximum(observed / total, epsilon)
    reference = np.maximum(expected, epsilon)
    return float(np.sum((actual - reference) * np.log(actual / reference)))


@dataclass(frozen=True)
class DriftThresholds:
    """PSI from ``watch`` up is "watch", from ``alert`` up "drift"; under ``min_rows`` live rows, "too_few_rows"."""

    watch: float = 0.1
    alert: float = 0.25
    min_rows: int = 500

    def status(self, psi: float | None, rows: int) -> FeatureStatus:
        """The status of one feature's PSI over ``rows`` live rows."""
        if psi is None or rows < self.min_rows:
            return "too_few_rows"
        return "drift" if psi >= self.alert else "watch" if psi >= self.watch else "ok"


class FeatureDrift(_Model):
    """One feature's drift: its PSI (null without live rows), status, and the live rows it was measured on."""

    feature: str
    psi: float | None = Field(description="PSI of the live values against the training values (null without any).")
    status: FeatureStatus
    rows: int = Field(description="Live rows with a value for this feature: the PSI's sample.")
    missing: float | None = Field(description="Share of the live rows without a value (null without live rows).")
    reference_missing: float = Field(description="Share of the training rows without a value.")


class DriftReport(_Model):
    """Live inputs against a version's training reference, feature by feature, with the worst status overall."""

    model_version: str | None
    status: OverallStatus
    rows: int = Field(description="Live rows counted (since this version loaded, in this process).")
    min_rows: int
    watch_psi: float
    alert_psi: float
    epsilon: float = EPSILON
    features: list[FeatureDrift]
    detail: str | None = None


def drift_report(
    bins: Mapping[str, FeatureBins],
    counts: Mapping[str, Counts],
    rows: int,
    thresholds: DriftThresholds,
    version: str | None,
) -> DriftReport:
    """The report of ``counts`` (per feature, in ``bins``' layout) over ``rows`` live rows."""
    features = []
    for name, feature_bins in bins.items():
        observed = counts[name]
        present = observed[: feature_bins.missing]
        psi = population_stability_index(feature_bins.expected_present, present)
        with_value = int(present.sum())
        features.append(
            FeatureDrift(
                feature=name,
                psi=psi,
                status=thresholds.status(psi, with_value),
                rows=with_value,
                missing=float(observed[feature_bins.missing] / rows) if rows else None,
                reference_missing=float(feature_bins.expected[feature_bins.missing]),
            )
        )
    overall: OverallStatus = "too_few_rows"
    if rows >= thresholds.min_rows:
        overall = _BY_SEVERITY[
            max((_BY_SEVERITY.index(f.status) for f in features if f.status in _BY_SEVERITY), default=0)
        ]
    return DriftReport(
        model_version=version,
        status=overall,
        rows=rows,
        min_rows=thresholds.min_rows,
        watch_psi=thresholds.watch,
        alert_psi=thresholds.alert,
        features=features,
    )


def no_reference_report(version: str | None, rows: int, thresholds: DriftThresholds) -> DriftReport:
    """The report for a version whose manifest holds no reference (trained before ccml stored one)."""
    return DriftReport(
        model_version=version,
        status="no_reference",
        rows=rows,
        min_rows=thresholds.min_rows,
        watch_psi=thresholds.watch,
        alert_psi=thresholds.alert,
        features=[],
        detail=f"model {version} has no reference distribution (trained before ccml stored one): retrain it to "
        "monitor drift",
    )
