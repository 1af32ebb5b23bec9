"""ABROCA and rate gaps of groups against the other rows, with permutation tests, vectorised.

ABROCA is the area between a group's ROC curve and the other rows' ROC curve, integrated
exactly over the false positive rate: both curves are piecewise linear, so on their merged
break points the difference is linear per interval. The curves are built on the sorted distinct
scores, or on ``MAX_BINS`` quantile bins of them when there are more (the decision threshold is
always a bin edge). The permutation test shuffles group membership (seeded): one ``bincount``
per chunk of permutations gives every group's per-bin class counts at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

Array = np.ndarray[Any, Any]

# Past this many distinct scores the ROC curves use quantile bins: the cost of a test grows
# with permutations x groups x bins.
MAX_BINS: Final = 200
# Cells per permutation chunk: bounds memory whatever the holdout size.
_CHUNK_CELLS: Final = 4_000_000
_EPS: Final = 1e-12
# Permutations per chunk (fewer for large holdouts): the granularity of stopping early.
_FIRST_CHUNK: Final = 50


def _gather(values: Array, index: Array) -> Array:
    """``values[row, index[row, j]]`` for every row (flat indexing: faster than take_along_axis)."""
    rows, k = values.shape
    result: Array = values.ravel()[index + (k * np.arange(rows))[:, None]]
    return result


def area_between(xa: Array, ya: Array, xb: Array, yb: Array) -> Array:
    """Row-wise exact area between two piecewise-linear curves on [0, 1] (x non-decreasing from 0 to 1).

    Both curves are evaluated on the merged sorted break points: between two of them each is
    linear, so the area of the (possibly sign-changing) difference is exact per interval.
    """
    k, size = xa.shape[1], xa.shape[1] + xb.shape[1]
    merged = np.concatenate([xa, xb], axis=1)
    order = np.argsort(merged, axis=1, kind="stable")
    grid = np.take_along_axis(merged, order, axis=1)
    positions = np.arange(size)
    new_value = np.ones_like(grid, dtype=bool)
    new_value[:, 1:] = grid[:, 1:] != grid[:, :-1]
    # Each grid point's tie block: its first and last position among equal values.
    first = np.maximum.accumulate(np.where(new_value, positions, 0), axis=1)
    ends = np.ones_like(new_value)
    ends[:, :-1] = new_value[:, 1:]
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends, positions, size), axis=1), axis=1), axis=1)
    # An interval starts at the right limit of its left point and ends at the left limit of its right one.
    last, first = last[:, :-1], first[:, 1:]
    left, right = grid[:, :-1], grid[:, 1:]
    values = []
    for x, y, mine in ((xa, ya, order < k), (xb, yb, order >= k)):
        seen = np.cumsum(mine, axis=1)  # this curve's points at or before each grid position
        at_or_before = _gather(seen, last)
        before = np.where(first > 0, _gather(seen, np.maximum(first - 1, 0)), 0)
        values.append((_value(x, y, left, at_or_before, right=True), _value(x, y, right, before, right=False)))
    (a_start, a_end), (b_start, b_end) = values
    start, end = a_start - b_start, a_end - b_end
    total = np.abs(start) + np.abs(end)
    crossing = np.divide(start**2 + end**2, total, out=np.zeros_like(total), where=total > 0) / 2
    area = np.where(start * end >= 0, total / 2, crossing) * (right - left)
    result: Array = area.sum(axis=1)
    return result


def _value(x: Array, y: Array, query: Array, count: Array, *, right: bool) -> Array:
    """The curve (x, y) at each ``query`` given how many of its points lie at or before it (``right``:
    the right limit, the top of a vertical step) or strictly before it (the left limit, its bottom)."""
    k = x.shape[1]
    lower = np.clip(count - 1, 0, k - 2)
    x0, x1, y0, y1 = _gather(x, lower), _gather(x, lower + 1), _gather(y, lower), _gather(y, lower + 1)
    span = x1 - x0
    value = y0 + np.divide((y1 - y0) * (query - x0), span, out=np.zeros_like(span), where=span > 0)
    return np.where(span > 0, value, y1 if right else y0)


def _curve(negatives: Array, positives: Array) -> tuple[Array, Array]:
    """ROC points (FPR, TPR) from per-bin counts, bins by decreasing score; rows without both classes are NaN."""
    fp, tp = np.cumsum(negatives, axis=-1), np.cumsum(positives, axis=-1)
    zero = np.zeros((*fp.shape[:-1], 1))
    fp, tp = np.concatenate([zero, fp], axis=-1), np.concatenate([zero, tp], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return fp / fp[..., -1:], tp / tp[..., -1:]


@dataclass(frozen=True)
class Bins:
    """Scores binned by decreasing value: each row's bin, the number of bins, which are predicted Completed."""

    index: Array  # each row's bin, 0 = highest scores
    count: int
    above: Array  # bins predicted Completed (score >= threshold)


def score_bins(scores: Array, threshold: float) -> Bins:
    """Bins on the distinct scores (at most ``MAX_BINS`` quantile bins), the threshold and the lowest score as edges."""
    distinct = np.unique(scores)
    if len(distinct) > MAX_BINS:
        distinct = np.unique(np.quantile(scores, np.linspace(0, 1, MAX_BINS)))
    edges = np.unique(np.concatenate([distinct, [threshold, scores.min()]]))
    ascending = np.searchsorted(edges, scores, side="right") - 1
    return Bins(len(edges) - 1 - ascending, len(edges), edges[::-1] >= threshold)


@dataclass(frozen=True)
class GroupStats:
    """Per permutation row and group: ABROCA, and FPR and FNR minus the other rows' (NaN where undefined)."""

    abroca: Array  # (permutations, groups), NaN where undefined
    fpr_gap: Array
    fnr_gap: Array


def group_stats(codes: Array, target: Array, bins: Bins, values: int) -> GroupStats:
    """ABROCA and the FPR / FNR gaps (group minus rest) of each group, for each row of ``codes``."""
    rows = codes.shape[0]
    width = values * 2 * bins.count
    keys = (codes * 2 + target) * bins.count + bins.index + width * np.arange(rows)[:, None]
    counts = np.bincount(keys.ravel(), minlength=rows * width).reshape(rows, values, 2, bins.count).astype(float)
    total = counts.sum(axis=1, keepdims=True)
    group_neg, group_pos = counts[:, :, 0], counts[:, :, 1]
    rest_neg, rest_pos = total[:, :, 0] - group_neg, total[:, :, 1] - group_pos
    xg, yg = _curve(group_neg, group_pos)
    xr, yr = _curve(rest_neg, rest_pos)
    defined = ~(np.isnan(xg[..., -1]) | np.isnan(yg[..., -1]) | np.isnan(xr[..., -1]) | np.isnan(yr[..., -1]))
    flat = defined.ravel()
    abroca = np.full(rows * values, np.nan)
    if flat.any():
        k = bins.count + 1
        pick = [a.reshape(-1, k)[flat] for a in (xg, yg, xr, yr)]
        abroca[flat] = area_between(*pick)
    above = bins.above
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = group_neg[..., above].sum(-1) / group_neg.sum(-1) - rest_neg[..., above].sum(-1) / rest_neg.sum(-1)
        fnr = group_pos[..., ~above].sum(-1) / group_pos.sum(-1) - rest_pos[..., ~above].sum(-1) / rest_pos.sum(-1)
    return GroupStats(abroca.reshape(rows, values), fpr, fnr)


def _exceedances(observed: Array, null: Array) -> Array:
    """Permutations at least as extreme as observed, per group; an undefined permuted value counts as
    extreme, so a group too small to measure is never significant by accident."""
    result: Array = (np.isnan(null) | (null >= observed[None, :] - _EPS)).sum(axis=0)
    return result


_NAMES: Final = ("abroca", "fpr_gap", "fnr_gap")


def permutation_stats(
    codes: Array,
    target: Array,
    bins: Bins,
    values: int,
    permutations: int,
    rng: np.random.Generator,
    *,
    needed: Array,
    alpha: float,
) -> tuple[GroupStats, GroupStats, int]:
    """Observed statistics, their permutation p-values (a ``GroupStats`` of them) and the permutations run.

    p = (1 + permutations at least as extreme) / (1 + permutations run). Permutations run in chunks
    and stop early once no test marked in ``needed`` (groups x the three statistics) can still end
    below ``alpha``, even if no later permutation were as extreme: the flags are settled then, and
    the other p-values are estimates from the permutations run (most columns settle in one chunk).
    """
    observed = group_stats(codes[None, :], target, bins, values)
    chunk = max(1, min(_FIRST_CHUNK, _CHUNK_CELLS // max(1, len(codes))))
    exceed = np.zeros((3, values))
    done = 0
    while done < permutations:
        rows = min(chunk, permutations - done)
        shuffled = rng.permuted(np.tile(codes, (rows, 1)), axis=1)
        null = group_stats(shuffled, target, bins, values)
        for index, name in enumerate(_NAMES):
            exceed[index] += _exceedances(getattr(observed, name)[0], getattr(null, name))
        done += rows
        open_tests = needed.T & ((1 + exceed) / (1 + permutations) < alpha)
        if not open_tests.any():
            break
    if not done:
        nan = np.full(values, np.nan)
        return observed, GroupStats(nan, nan, nan), 0
    p = [
        np.where(np.isnan(getattr(observed, name)[0]), np.nan, (1 + exceed[i]) / (1 + done))
        for i, name in enumerate(_NAMES)
    ]
    return observed, GroupStats(*p), done
