"""The four component contracts. Each public method is concrete and owns the cross-cutting
work (argument checks, logging, wrapping third-party errors); implementations fill in the
protected hooks, so every backend shares the same semantics.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import numpy as np
import structlog

from ccml.core.aliases import ALIAS_PATTERN as ALIAS_PATTERN
from ccml.core.aliases import CHAMPION as CHAMPION
from ccml.core.aliases import AliasBook
from ccml.core.artifact import DEFAULT_MAX_FILE_BYTES, Manifest, ModelArtifact
from ccml.core.claims import ClaimBook
from ccml.core.errors import CcmlError, DataSourceError, ModelNotFoundError, PredictionError, TrainingError
from ccml.core.objects import METADATA_LIMIT as METADATA_LIMIT
from ccml.core.objects import ObjectStore
from ccml.core.records import AliasRecord, HistoryEvent
from ccml.core.schema import FeatureSchema
from ccml.core.types import Claim, Dataset, ModelVersion, Prediction
from ccml.core.versions import GARBAGE_AGE_S, VERSION_PATTERN, ModelVersions, new_version_id
from ccml.core.versions import VERSION_FORMAT as VERSION_FORMAT

if TYPE_CHECKING:
    import pandas as pd

log = structlog.get_logger(__name__)

# A string alias: pandas stays unimported in a process that serves from JSON records.
Records: TypeAlias = "pd.DataFrame | Sequence[Mapping[str, Any]]"
Probabilities = np.ndarray[Any, np.dtype[np.float64]]
Labels = np.ndarray[Any, np.dtype[np.int8]]


class DataSource(ABC):
    """Reads one training table from one location."""

    def load(self) -> Dataset:
        """Read the table; any failure of the backend becomes ``DataSourceError``."""
        try:
            dataset = self._load()
        except CcmlError:
            raise
        except Exception as exc:  # the source's boundary: its library's errors become ours
            raise DataSourceError(f"cannot load data from {self.location()}: {str(exc)[:500]}") from exc
        log.info("data_loaded", rows=len(dataset.frame), **self.describe())
        return dataset

    def at_version(self, version_id: str) -> DataSource:
        """This source, reading the object's version ``version_id`` where the backend keeps versions.

        Hook: a backend without versions returns itself (and ``Dataset.identity`` says what was read).
        """
        return self

    def location(self) -> str:
        """Where the data lives, for messages (from ``describe``)."""
        return self.describe().get("location", type(self).__name__)

    @abstractmethod
    def _load(self) -> Dataset: ...

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Safe to log: no secrets."""


class ModelStore(ObjectStore):
    """Versioned, alias-aware storage of model artifacts.

    Guarantees: versions are write-once and sortable by id; a version exists only once its
    manifest is written (the commit point), so a crash mid-save leaves no visible version;
    aliases move by compare-and-swap, keeping the versions they pointed to before for
    ``rollback``; every file is verified against the manifest before it is returned.

    A backend implements only the storage primitive (``ObjectStore``'s hooks); the semantics
    live in ``ccml.core.versions``, ``ccml.core.aliases`` and ``ccml.core.claims``. Layout
    under the store's root (the same for every backend)::

        versions/<id>/model.skops, versions/<id>/model.onnx, versions/<id>/manifest.json
        aliases/<alias>.json
        history/<time>-<action>-<alias>.json
        processed/<sha256 of an input's identity>.json   (idempotency claims)
    """

    new_version_id = staticmethod(new_version_id)

    def __init__(
        self,
        signing_key: bytes | None = None,
        *,
        allow_unsigned_pickle: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self._versions = ModelVersions(
            self,
            signing_key,
            allow_unsigned_pickle=allow_unsigned_pickle,
            max_file_bytes=max_file_bytes,
            new_id=lambda: self.new_version_id(),  # looked up per save: a subclass or a test may override it
        )
        self._aliases = AliasBook(self)
        self._claims = ClaimBook(self)

    # -- versions ----------------------------------------------------------------------
    def save(self, artifact: ModelArtifact, version: str | None = None) -> ModelVersion:
        """Store the artifact as a new version; files first, the manifest last (commit point).

        ``version``: an id reserved with ``new_version_id`` (see ``ModelVersions.save``).
        """
        return self._versions.save(artifact, version)

    def versions(self) -> list[ModelVersion]:
        """Every committed version, oldest first, with the aliases pointing at it."""
        by_version: dict[str, list[str]] = {}
        for alias, record in self.aliases().items():
            by_version.setdefault(record.version, []).append(alias)
        return [ModelVersion(v, self.manifest(v), tuple(sorted(by_version.get(v, [])))) for v in self._versions.ids()]

    def manifest(self, version: str) -> Manifest:
        """The manifest of ``version``; ``ModelNotFoundError`` if it is not committed."""
        return self._versions.manifest(version)

    def resolve(self, ref: str = CHAMPION) -> str:
        """The version id ``ref`` names: a version id itself, or an alias."""
        if VERSION_PATTERN.match(ref):
            self.manifest(ref)
            return ref
        record = self.alias(ref)
        if record is None:
            raise ModelNotFoundError(f"alias {ref!r} is not set (no model has been promoted to it)")
        return record.version

    def load(self, ref: str = CHAMPION) -> ModelArtifact:
        """Load and verify a version (by id or alias); see ``ModelVersions.load``."""
        # A version id needs no resolving: reading its manifest is the existence check.
        version = ref if VERSION_PATTERN.match(ref) else self.resolve(ref)
        artifact = self._versions.load(version)
        log.info("model_loaded", version=version, ref=ref, **self.describe())
        return artifact

    def collect_garbage(self, min_age_s: float = GARBAGE_AGE_S) -> list[str]:
        """Remove what interrupted saves left (see ``ModelVersions.collect_garbage``)."""
        return self._versions.collect_garbage(min_age_s)

    # -- aliases -----------------------------------------------------------------------
    def alias(self, alias: str = CHAMPION) -> AliasRecord | None:
        """Where ``alias`` points now (None if it was never set)."""
        return self._aliases.get(alias)

    def alias_token(self, alias: str = CHAMPION) -> str | None:
        """A cheap token that changes whenever the alias moves (for hot reload polling)."""
        return self._aliases.token(alias)

    def aliases(self) -> dict[str, AliasRecord]:
        """Every alias that is set, by name."""
        return self._aliases.all()

    def promote(self, version: str, alias: str = CHAMPION, *, reason: str = "", forced: bool = False) -> AliasRecord:
        """Point ``alias`` at ``version``, remembering where it pointed before."""
        self.manifest(version)  # must exist
        return self._aliases.move(alias, version, "force_promote" if forced else "promote", reason)

    def rollback(self, alias: str = CHAMPION, *, reason: str = "rollback") -> AliasRecord:
        """Point ``alias`` back at the version it pointed to before the last move."""
        return self._aliases.move(alias, None, "rollback", reason)

    def history(self) -> list[HistoryEvent]:
        """Every alias move, oldest first."""
        return self._aliases.history()

    # -- idempotency -------------------------------------------------------------------
    def claim(self, identity: str, lease_s: float) -> Claim:
        """Claim the right to process an input exactly once (see ``ccml.core.claims``)."""
        return self._claims.claim(identity, lease_s)

    def complete_claim(self, identity: str, version: str | None) -> None:
        """Mark a claimed input done (it is never processed again), naming the version it made."""
        self._claims.complete(identity, version)

    def fail_claim(self, identity: str, error: str) -> None:
        """Mark a claimed input failed, so a retry may take it over."""
        self._claims.fail(identity, error)


class FittedModel(ABC):
    """A fitted model as the training workflow sees it: it scores feature tables and
    serializes itself. The workflow does the rest (split, scoring, manifest, export)."""

    #: The hyper-parameters it was fitted with, recorded in the manifest.
    params: dict[str, Any]

    @abstractmethod
    def predict_proba(self, features: pd.DataFrame) -> Probabilities:
        """The probability of completion of each row of ``features`` (schema feature names)."""

    @abstractmethod
    def files(self) -> dict[str, bytes]:
        """The version's model files, named as in ``ccml.core.model_files.ARTIFACT_FILES``
        (none is fine: a model served only through an exported file)."""


class Trainer(ABC):
    """Fits a model on a table's feature columns and completion labels.

    Only the fit is a trainer's job: the workflow splits, cross-validates (by fitting again),
    scores, writes the manifest and exports for the serving backend, whatever the trainer.
    """

    name: ClassVar[str]

    def fit(self, features: pd.DataFrame, target: Labels, schema: FeatureSchema) -> FittedModel:
        """Fit on ``features`` (typed columns named as ``schema``'s features) and ``target`` (1 = completed)."""
        try:
            return self._fit(features, target, schema)
        except CcmlError:
            raise
        except Exception as exc:  # the trainer's boundary: its library's errors become ours
            raise TrainingError(f"{self.name} training failed: {exc}") from exc

    @abstractmethod
    def _fit(self, features: pd.DataFrame, target: Labels, schema: FeatureSchema) -> FittedModel:
        """Fit and return the model; ``fit`` wraps any exception into ``TrainingError``."""

    def describe(self) -> dict[str, str]:
        """What this trainer is, safe to log."""
        return {"trainer": self.name}


class Predictor(ABC):
    """Turns records into completion probabilities and labels with one model artifact."""

    def __init__(self, artifact: ModelArtifact, threshold: float = 0.5) -> None:
        self.artifact = artifact
        self.threshold = threshold
        labels = artifact.manifest.schema_["target"].get("labels", ["Not Completed", "Completed"])
        self.labels: tuple[str, str] = (str(labels[0]), str(labels[1]))

    @property
    def version(self) -> str:
        """The id of the version this predictor serves (``unsaved`` before it is saved)."""
        return self.artifact.version or "unsaved"

    def predict_proba(self, records: Records) -> Probabilities:
        """Probability of completion for each record, in order."""
        if len(records) == 0:
            return np.empty(0, dtype=np.float64)
        try:
            probabilities = self._predict_proba(records)
        except CcmlError:
            raise
        except Exception as exc:  # the backend's boundary: its runtime's errors become ours
            raise PredictionError(f"model {self.version} failed to predict: {exc}") from exc
        if probabilities.shape != (len(records),):
            raise PredictionError(f"model {self.version} returned shape {probabilities.shape} for {len(records)} rows")
        return probabilities

    def predict_one(self, record: Mapping[str, Any]) -> float:
        """Probability of completion for one record: the API's per-request call, which a
        backend can serve faster than a one-row batch (see ``_predict_one``)."""
        try:
            return self._predict_one(record)
        except CcmlError:
            raise
        except Exception as exc:  # the backend's boundary: its runtime's errors become ours
            raise PredictionError(f"model {self.version} failed to predict: {exc}") from exc

    def _predict_one(self, record: Mapping[str, Any]) -> float:
        return float(self._predict_proba([record])[0])

    def predict(self, records: Records) -> list[Prediction]:
        """Probability, decision and label for each record, in order."""
        probabilities = self.predict_proba(records)
        return [self.to_prediction(float(p)) for p in probabilities]

    def to_prediction(self, probability: float) -> Prediction:
        """Apply the decision threshold to one probability."""
        completed = probability >= self.threshold
        return Prediction(probability, completed, self.labels[int(completed)])

    @abstractmethod
    def _predict_proba(self, records: Records) -> Probabilities: ...
