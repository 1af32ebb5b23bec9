"""The live inputs' distribution, in memory that does not grow with the number of requests.

``DriftSummary`` counts the records one version scored into that version's reference bins
(``ccml.core.drift``): one fixed-size array of counts per feature. Recording a record only
appends it to a pending list (no lock: ``list.append`` is atomic); every ``fold_every`` records,
and whenever the summary is read, the pending records are counted in one vectorised pass per
feature and dropped. So the memory is the counts plus at most ``fold_every`` pending records,
however many requests arrive, and a request pays for an append.

``DriftMonitor`` keeps the summary of the version serving now: the first record (or read) after
a hot reload starts a fresh summary against the new version's reference.
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from ccml.core.contracts import Predictor
from ccml.core.drift import (
    Counts,
    DriftReference,
    DriftReport,
    DriftThresholds,
    FeatureBins,
    drift_report,
    no_reference_report,
)
from ccml.core.errors import ModelNotLoadedError
from ccml.models.serving.watcher import ChampionWatcher

# Records waiting to be counted: a fold of this many costs about as much as one /predict, so a
# fold every this many requests adds well under 1% to the average request.
FOLD_EVERY: Final = 256
# The gauges (``on_report``) are refreshed after a fold at most this often, and on every read.
PUBLISH_EVERY_S: Final = 1.0
Record = Mapping[str, Any]


class DriftSummary:
    """Per-feature bin counts of the records scored by one version (``reference``: that version's).

    Thread-safe: records may arrive from the event loop and from worker threads at once; a record
    is counted exactly once. Without a reference, records are only counted as rows.
    """

    def __init__(
        self,
        reference: DriftReference | None,
        version: str | None = None,
        *,
        fold_every: int = FOLD_EVERY,
        on_fold: Callable[[DriftSummary], None] | None = None,
    ) -> None:
        self.reference = reference
        self.version = version
        self.fold_every = fold_every
        self.on_fold = on_fold
        self.bins = {name: FeatureBins(spec) for name, spec in (reference.features if reference else {}).items()}
        names = tuple(self.bins)
        # One C call per record picks every feature's value (a validated record has them all).
        self._values = operator.itemgetter(*names) if len(names) > 1 else None
        self._counts: dict[str, Counts] = {
            name: np.zeros(bins.size, dtype=np.int64) for name, bins in self.bins.items()
        }
        self._rows = 0
        self._pending: list[Record] = []
        self._lock = threading.Lock()

    def record(self, record: Record) -> None:
        """Add one scored record (the API's per-request call: an append; a fold every ``fold_every``)."""
        pending = self._pending
        pending.append(record)
        if len(pending) >= self.fold_every:
            self.fold()

    def record_many(self, records: Sequence[Record]) -> None:
        """Add a batch of scored records, counted at once (a batch is already vectorised)."""
        if records:
            self._add(records)

    def fold(self) -> None:
        """Count the pending records now."""
        with self._lock:
            # Slice then delete the first n: a record appended meanwhile stays pending, none is lost.
            taken = len(self._pending)
            batch = self._pending[:taken]
            del self._pending[:taken]
        if batch:
            self._add(batch)

    def _columns(self, records: Sequence[Record]) -> list[Sequence[object]]:
        """The records' values feature by feature (a field absent from a record counts as missing)."""
        if self._values is not None:
            try:
                return list(zip(*map(self._values, records), strict=True))
            except KeyError:
                pass
        return [[record.get(name) for record in records] for name in self.bins]

    def _add(self, records: Sequence[Record]) -> None:
        columns = self._columns(records)
        counted = {name: bins.count(values) for (name, bins), values in zip(self.bins.items(), columns, strict=True)}
        with self._lock:
            for name, counts in counted.items():
                self._counts[name] += counts
            self._rows += len(records)
        if self.on_fold is not None:
            self.on_fold(self)

    @property
    def pending(self) -> int:
        """Records recorded but not yet counted (at most about ``fold_every``)."""
        return len(self._pending)

    @property
    def rows(self) -> int:
        """Records counted so far (pending ones not included)."""
        return self._rows

    def counts(self) -> dict[str, Counts]:
        """A copy of each feature's bin counts (``FeatureBins`` layout), pending records not included."""
        with self._lock:
            return {name: counts.copy() for name, counts in self._counts.items()}

    def nbytes(self) -> int:
        """Bytes the counts take: fixed by the reference, whatever the number of records."""
        return sum(counts.nbytes for counts in self._counts.values())

    def report(self, thresholds: DriftThresholds, *, fold: bool = True) -> DriftReport:
        """The drift of every record recorded so far (``fold``: pending ones counted first)."""
        if fold:
            self.fold()
        with self._lock:
            counts = {name: counts.copy() for name, counts in self._counts.items()}
            rows = self._rows
        if self.reference is None:
            return no_reference_report(self.version, rows, thresholds)
        return drift_report(self.bins, counts, rows, thresholds, self.version)


class DriftMonitor:
    """The ``DriftSummary`` of the version ``watcher`` serves, fresh for each version it loads.

    ``on_report`` (the Prometheus gauges) gets the report after every fold and when a new summary
    starts. A record scored by a version that was replaced meanwhile is not counted.
    """

    def __init__(
        self,
        watcher: ChampionWatcher,
        thresholds: DriftThresholds,
        *,
        fold_every: int = FOLD_EVERY,
        on_report: Callable[[DriftReport], None] | None = None,
    ) -> None:
        self.watcher = watcher
        self.thresholds = thresholds
        self.fold_every = fold_every
        self.on_report = on_report
        self._live: tuple[Predictor, DriftSummary] | None = None
        self._published = 0.0
        self._lock = threading.Lock()

    def summary(self, predictor: Predictor) -> DriftSummary | None:
        """The summary of ``predictor``'s version; None if it no longer serves."""
        live = self._live
        if live is not None and live[0] is predictor:
            return live[1]
        if predictor is not self.watcher.current:
            return None
        with self._lock:
            live = self._live
            if live is None or live[0] is not predictor:
                on_fold = self._folded if self.on_report is not None else None
                summary = DriftSummary(
                    predictor.artifact.manifest.reference,
                    predictor.version,
                    fold_every=self.fold_every,
                    on_fold=on_fold,
                )
                live = self._live = (predictor, summary)
                self._publish(summary)
        return live[1]

    def _publish(self, summary: DriftSummary) -> None:
        if self.on_report is not None:
            self._published = time.monotonic()
            self.on_report(summary.report(self.thresholds, fold=False))

    def _folded(self, summary: DriftSummary) -> None:
        # A report costs about half a fold: at most one per PUBLISH_EVERY_S keeps the gauges fresh
        # without making every fold dearer under load.
        if time.monotonic() - self._published >= PUBLISH_EVERY_S:
            self._publish(summary)

    def record(self, predictor: Predictor, record: Record) -> None:
        """Add one record ``predictor`` scored."""
        summary = self.summary(predictor)
        if summary is not None:
            summary.record(record)

    def record_many(self, predictor: Predictor, records: Sequence[Record]) -> None:
        """Add a batch of records ``predictor`` scored."""
        summary = self.summary(predictor)
        if summary is not None:
            summary.record_many(records)

    def report(self, predictor: Predictor) -> DriftReport:
        """The drift of ``predictor``'s live inputs so far."""
        summary = self.summary(predictor)
        if summary is None:  # replaced between the caller's read and ours: report the version serving now
            current = self.watcher.current
            if current is None:
                raise ModelNotLoadedError("no model is loaded")
            return self.report(current)
        report = summary.report(self.thresholds)
        if self.on_report is not None:
            self._published = time.monotonic()
            self.on_report(report)
        return report
