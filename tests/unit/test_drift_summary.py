"""The live drift summary: bounded memory over 100,000 records, every record counted exactly once."""

from __future__ import annotations

import sys
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from ccml.core.drift import DriftReference, DriftThresholds
from ccml.core.schema import FeatureSchema
from ccml.core.types import TrainingResult
from ccml.models.serving.drift import DriftSummary
from ccml.models.serving.records import records_from_frame
from ccml.models.training.synthetic import generate

RECORDS = 100_000


@pytest.fixture
def reference(training: TrainingResult) -> DriftReference:
    reference = training.artifact.manifest.reference
    assert reference is not None
    return reference


@pytest.fixture
def fast_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond, so a record racing a fold is likely, not a rare accident."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_memory_stays_bounded_over_100000_recorded_requests(schema: FeatureSchema, reference: DriftReference) -> None:
    records = records_from_frame(generate(schema, 1000, seed=11), schema)
    summary = DriftSummary(reference)
    sizes = {name: counts.shape for name, counts in summary.counts().items()}
    counts_bytes = summary.nbytes()
    tracemalloc.start()
    try:
        most_pending = 0
        for i in range(RECORDS):
            summary.record(records[i % len(records)])
            most_pending = max(most_pending, summary.pending)
            if i == 9_999:  # past the first folds: the summary's steady state
                warm, _ = tracemalloc.get_traced_memory()
        grown = tracemalloc.get_traced_memory()[0] - warm
    finally:
        tracemalloc.stop()
    report = summary.report(DriftThresholds())

    assert report.rows == RECORDS
    assert most_pending < summary.fold_every
    assert summary.pending == 0
    assert {name: counts.shape for name, counts in summary.counts().items()} == sizes
    assert summary.nbytes() == counts_bytes
    assert all(int(counts.sum()) == RECORDS for counts in summary.counts().values())
    # 90,000 more records kept would be megabytes; what may remain is allocator noise.
    assert grown < 64 * 1024, f"the summary grew by {grown} bytes over 90,000 records"


def test_records_from_many_threads_are_each_counted_exactly_once(
    schema: FeatureSchema, reference: DriftReference, fast_thread_switches: None
) -> None:
    records = records_from_frame(generate(schema, 200, seed=12), schema)
    summary = DriftSummary(reference, fold_every=7)  # many folds, each racing the appends
    per_thread, batches = 5_000, 20

    def one_by_one() -> None:
        for i in range(per_thread):
            summary.record(records[i % len(records)])

    def in_batches() -> None:
        for _ in range(batches):
            summary.record_many(records)

    threads = [threading.Thread(target=work) for work in (one_by_one, one_by_one, one_by_one, in_batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = 3 * per_thread + batches * len(records)

    assert summary.report(DriftThresholds()).rows == expected
    assert all(int(counts.sum()) == expected for counts in summary.counts().values())


def test_a_summary_without_a_reference_counts_rows_and_says_there_is_no_reference(schema: FeatureSchema) -> None:
    summary = DriftSummary(None, "20260101T000000.000000Z")
    for record in records_from_frame(generate(schema, 300, seed=13), schema):
        summary.record(record)
    report = summary.report(DriftThresholds())
    assert (report.status, report.rows, report.features) == ("no_reference", 300, [])
    assert report.detail is not None
    assert "retrain" in report.detail
    assert summary.nbytes() == 0
