"""Plain value types passed between components."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ccml.core.artifact import Manifest, ModelArtifact
from ccml.core.schema import FeatureSchema

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Dataset:
    """A raw training table as read from its source, with provenance.

    ``frame`` holds the file's cells as text (missing cells as NaN): typing and range
    checks belong to validation, which reports every problem at once.
    ``identity`` names the exact object read (path and mtime, or S3 key and ETag).
    """

    frame: pd.DataFrame
    fingerprint: str
    source: dict[str, str]
    identity: str


@dataclass(frozen=True)
class ValidatedTable:
    """A table that passed validation: typed feature columns named as in the schema."""

    features: pd.DataFrame
    target: np.ndarray[Any, np.dtype[np.int8]]
    schema: FeatureSchema
    fingerprint: str
    source: dict[str, str]
    rows_read: int
    duplicates_dropped: int
    # CSV columns that are neither features, the target nor id columns: not used, and shown
    # to the user (a column the schema forgot looks exactly like this).
    columns_ignored: tuple[str, ...] = ()
    # The declared group columns found in the file (named as the groups, values as text, bad or
    # blank cells as MISSING_GROUP), row for row with ``features``; never model inputs themselves.
    groups: pd.DataFrame | None = None
    # Declared groups whose column the file lacks, with why: fairness skips them.
    groups_absent: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        """Number of rows kept after dropping duplicates: the ones the training set and holdout are split from."""
        return len(self.features)


@dataclass(frozen=True)
class TrainingResult:
    """A trained model and the holdout it was scored on (kept for the promotion gate)."""

    artifact: ModelArtifact
    holdout_features: pd.DataFrame
    holdout_target: np.ndarray[Any, np.dtype[np.int8]]
    # The fitted model and its completion probabilities on the holdout, for the export step.
    model: Any = None
    holdout_scores: np.ndarray[Any, np.dtype[np.float64]] | None = None
    # The mean estimator input over the training part (a linear model's explanations start there).
    input_means: np.ndarray[Any, np.dtype[np.float64]] | None = None
    # The holdout rows' group values (see ``ValidatedTable.groups``), for the fairness evaluation.
    holdout_groups: pd.DataFrame | None = None


@dataclass(frozen=True)
class ModelVersion:
    """A committed version: its id, its manifest and the aliases pointing at it when it was listed (sorted)."""

    id: str
    manifest: Manifest
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an input for processing (see ``ModelStore.claim``)."""

    identity: str
    granted: bool
    reason: str
    version: str | None = None


@dataclass(frozen=True)
class Prediction:
    """One answer: the probability of completion, whether it reaches the decision threshold, and its label."""

    probability: float
    completed: bool
    label: str


class LambdaContext(Protocol):
    """The parts of AWS Lambda's context object that ccml uses."""

    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int:
        """Return the milliseconds left before Lambda stops the invocation."""
