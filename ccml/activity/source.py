"""An activity log as a training ``DataSource``: logs and labels in, the feature table as of a day out.

Everything after it (validation against the derived schema, training, the serving check, the
gate, the store) is the table workflow, unchanged: the log is one more place a table comes from.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ccml.activity.aggregation import Aggregation, aggregate
from ccml.activity.engines import Engine
from ccml.activity.labels import join_labels
from ccml.core.activity import ActivitySchema
from ccml.core.contracts import DataSource
from ccml.core.types import Dataset
from ccml.storage.log_files import fetch_files


def files_identity(paths: Sequence[Path]) -> str:
    """sha256 of each file's name, size and modification time: which bytes were read, cheaply."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dataclass
class LogInputs:
    """Where a log and its companions are, and how to read them."""

    logs: str
    engine: Callable[[], Engine]
    max_bytes: int
    labels: DataSource | None = None
    calendar: DataSource | None = None
    enrollments: DataSource | None = None

    def aggregate(self, schema: ActivitySchema, days: Sequence[int] | None) -> tuple[Aggregation, str]:
        """The unlabelled feature table at ``days`` (None: each course's current day), and the files' identity."""
        calendar = self.calendar.load().frame if self.calendar is not None else None
        enrollments = self.enrollments.load().frame if self.enrollments is not None else None
        with tempfile.TemporaryDirectory(prefix="ccml-logs-") as work:
            paths = fetch_files(self.logs, Path(work), max_bytes=self.max_bytes)
            identity = files_identity(paths)
            engine = self.engine()
            try:
                return aggregate(engine, schema, paths, days, calendar=calendar, enrollments=enrollments), identity
            finally:
                engine.close()


class ActivityDataSource(DataSource):
    """The labelled feature table of a log as of one or more course days."""

    def __init__(self, schema: ActivitySchema, inputs: LogInputs, days: Sequence[int]) -> None:
        self.schema = schema
        self.inputs = inputs
        self.days = sorted(set(days))

    def describe(self) -> dict[str, str]:
        """The logs' location and the days (safe to log)."""
        return {"backend": "activity", "location": self.inputs.logs, "days": ",".join(map(str, self.days))}

    def _load(self) -> Dataset:
        aggregation, files = self.inputs.aggregate(self.schema, self.days)
        labels_frame: pd.DataFrame | None = None
        labels_id = ""
        if self.inputs.labels is not None:
            labels = self.inputs.labels.load()
            labels_frame, labels_id = labels.frame, labels.fingerprint
        table = join_labels(self.schema, aggregation.table, labels_frame)
        fingerprint = hashlib.sha256(f"{files}\0{labels_id}\0{self.days}".encode()).hexdigest()
        return Dataset(
            frame=table,
            fingerprint=fingerprint,
            source=self.describe(),
            identity=f"logs:{self.inputs.logs}@{files}:days={self.days}",
        )
