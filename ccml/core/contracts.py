"""The four component contracts. Each public method is concrete and owns the cross-cutting
work (argument checks, logging, wrapping third-party errors); implementations fill in the
protected hooks, so every backend shares the same semantics.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import numpy as np
import structlog
from pydantic import ValidationError

from ccml.core.artifact import DEFAULT_MAX_FILE_BYTES, MANIFEST_FILE, Manifest, ModelArtifact, utc_now
from ccml.core.errors import (
    ArtifactIntegrityError,
    CcmlError,
    ConcurrentUpdateError,
    DataSourceError,
    ModelNotFoundError,
    ModelStoreError,
    ModelVersionExistsError,
    PredictionError,
    TrainingError,
)
from ccml.core.types import (
    AliasRecord,
    Claim,
    Dataset,
    HistoryAction,
    HistoryEvent,
    ModelVersion,
    Prediction,
    TrainingResult,
    ValidatedTable,
)

if TYPE_CHECKING:
    import pandas as pd

log = structlog.get_logger(__name__)

# A string alias: pandas stays unimported in a process that serves from JSON records.
Records: TypeAlias = "pd.DataFrame | Sequence[Mapping[str, Any]]"
Probabilities = np.ndarray[Any, np.dtype[np.float64]]

VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")
VERSION_FORMAT = "%Y%m%dT%H%M%S.%fZ"
# Manifests, aliases, claims and history records are small JSON: a larger object is not ours.
METADATA_LIMIT = 1024**2
# What an interrupted save leaves behind is removed once it is this old (no save takes an hour).
GARBAGE_AGE_S = 3600.0
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
CHAMPION = "champion"


class DataSource(ABC):
    """Reads one training table from one location."""

    def load(self) -> Dataset:
        try:
            dataset = self._load()
        except CcmlError:
            raise
        except Exception as exc:
            raise DataSourceError(f"cannot load data from {self.location()}: {exc}") from exc
        log.info("data_loaded", rows=len(dataset.frame), **self.describe())
        return dataset

    def location(self) -> str:
        return self.describe().get("location", type(self).__name__)

    @abstractmethod
    def _load(self) -> Dataset: ...

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Safe to log: no secrets."""


class ModelStore(ABC):
    """Versioned, alias-aware storage of model artifacts.

    Guarantees: versions are write-once and sortable by id; a version exists only once its
    manifest is written (the commit point), so a crash mid-save leaves no visible version;
    aliases move by compare-and-swap, keeping the versions they pointed to before for
    ``rollback``; every file is verified against the manifest before it is returned.

    Layout under the store's root (the same for every backend)::

        versions/<id>/model.joblib, versions/<id>/manifest.json
        aliases/<alias>.json
        history/<time>-<action>-<alias>.json
        processed/<sha256 of an input's identity>.json   (idempotency claims)
    """

    _ALIAS_RETRIES: ClassVar[int] = 20
    # Whether ``save`` also removes what interrupted saves left (see ``collect_garbage``).
    collects_garbage_on_save: ClassVar[bool] = True

    def __init__(
        self,
        signing_key: bytes | None = None,
        *,
        allow_unsigned_pickle: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self._signing_key = signing_key
        self._allow_unsigned_pickle = allow_unsigned_pickle
        self._max_file_bytes = max_file_bytes

    # -- hooks -------------------------------------------------------------------------
    @abstractmethod
    def _read(self, key: str, limit: int) -> bytes | None:
        """The object's bytes, or None if absent.

        Raise ``ArtifactIntegrityError`` if it holds more than ``limit`` bytes (read at most
        ``limit + 1`` to know) or is not a plain stored object (a FIFO, a device, a link).
        """

    @abstractmethod
    def _delete(self, key: str) -> None:
        """Remove an object (absent is fine). Used only to collect garbage."""

    def _litter(self, older_than: float) -> list[str]:
        """Hook: backend-specific leftovers (temporary files) last changed before ``older_than``
        (a POSIX time), as paths or keys for ``_remove_litter``. None by default."""
        return []

    def _remove_litter(self, item: str) -> None:
        """Hook: remove one item that ``_litter`` returned."""
        raise NotImplementedError(f"{type(self).__name__} returns litter but cannot remove it")

    @abstractmethod
    def _write_new(self, key: str, data: bytes) -> None:
        """Create an object; raise ``ModelVersionExistsError`` if it exists (atomic)."""

    @abstractmethod
    def _swap(self, key: str, data: bytes, expected: str | None) -> None:
        """Replace an object if its token is still ``expected`` (None: must be absent).

        Raise ``ConcurrentUpdateError`` otherwise. Readers see the old or new bytes, never a mix.
        """

    @abstractmethod
    def _token(self, key: str) -> str | None:
        """A cheap change token for the object (ETag, inode+mtime), or None if absent."""

    @abstractmethod
    def _list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Safe to log: no secrets."""

    # -- helpers -----------------------------------------------------------------------
    def _guard(self, action: str, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except CcmlError:
            raise
        except Exception as exc:
            raise ModelStoreError(f"{action} failed on {self.describe().get('location', self)}: {exc}") from exc

    @staticmethod
    def too_large(key: str, limit: int) -> ArtifactIntegrityError:
        return ArtifactIntegrityError(f"{key} holds more than {limit} bytes: refused")

    @staticmethod
    def _version_key(version: str, name: str) -> str:
        return f"versions/{version}/{name}"

    @staticmethod
    def _alias_key(alias: str) -> str:
        return f"aliases/{alias}.json"

    @staticmethod
    def _check_alias(alias: str) -> str:
        if not ALIAS_PATTERN.match(alias):
            raise ModelStoreError(f"invalid alias {alias!r}: use lowercase letters, digits, '-' and '_'")
        return alias

    @staticmethod
    def new_version_id() -> str:
        return utc_now().strftime(VERSION_FORMAT)

    # -- versions ----------------------------------------------------------------------
    def save(self, artifact: ModelArtifact) -> ModelVersion:
        """Store the artifact as a new version; files first, the manifest last (commit point)."""
        for _attempt in range(5):
            version = self.new_version_id()
            manifest = artifact.manifest.model_copy(update={"version": version})
            if self._signing_key is not None:
                manifest = manifest.signed(self._signing_key)
            try:
                for name, data in artifact.files.items():
                    self._guard("writing an artifact", self._write_new, self._version_key(version, name), data)
            except ModelVersionExistsError:
                time.sleep(0.001)  # two saves in the same microsecond: take the next id
                continue
            self._guard(
                "writing a manifest", self._write_new, self._version_key(version, MANIFEST_FILE), manifest.to_json()
            )
            log.info("model_saved", version=version, **self.describe())
            if self.collects_garbage_on_save:
                try:
                    self.collect_garbage()
                except CcmlError as exc:  # the version is saved; litter can wait for the next save
                    log.warning("garbage_collection_failed", error=str(exc))
            return ModelVersion(version, manifest)
        raise ModelStoreError("could not allocate a new version id")

    def versions(self) -> list[ModelVersion]:
        """Every committed version, oldest first, with the aliases pointing at it."""
        keys = self._guard("listing versions", self._list, "versions/")
        ids = sorted(
            {
                key.split("/")[1]
                for key in keys
                if key.endswith("/" + MANIFEST_FILE) and VERSION_PATTERN.match(key.split("/")[1])
            }
        )
        by_version: dict[str, list[str]] = {}
        for alias, record in self.aliases().items():
            by_version.setdefault(record.version, []).append(alias)
        return [ModelVersion(v, self.manifest(v), tuple(sorted(by_version.get(v, [])))) for v in ids]

    def manifest(self, version: str) -> Manifest:
        if not VERSION_PATTERN.match(version):
            raise ModelNotFoundError(f"{version!r} is not a version id")
        key = self._version_key(version, MANIFEST_FILE)
        data = self._guard("reading a manifest", self._read, key, METADATA_LIMIT)
        if data is None:
            raise ModelNotFoundError(f"no model version {version}")
        try:
            return Manifest.from_json(data)
        except ValidationError as exc:  # one line: what is wrong where, not pydantic's report
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors()[:5])
            raise ArtifactIntegrityError(f"manifest of {version} is unreadable: {problems[:500]}") from exc

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
        """Load and verify a version (by id or alias). Nothing is deserialized here.

        The signature (with a key) is checked before any file is read; each file is read only
        up to the size its manifest gives (and never beyond ``max_file_bytes``), then checked
        against its sha256.
        """
        # A version id needs no resolving: reading its manifest is the existence check.
        version = ref if VERSION_PATTERN.match(ref) else self.resolve(ref)
        manifest = self.manifest(version)
        if self._signing_key is not None:
            manifest.verify_signature(self._signing_key)
        files: dict[str, bytes] = {}
        for name, entry in manifest.files.items():
            if entry.size > self._max_file_bytes:
                raise ArtifactIntegrityError(
                    f"model {version}: {name} is {entry.size} bytes, "
                    f"over CCML_MAX_ARTIFACT_BYTES={self._max_file_bytes}"
                )
            data = self._guard("reading an artifact", self._read, self._version_key(version, name), entry.size)
            if data is None:
                raise ModelNotFoundError(f"model {version}: file {name} is missing")
            files[name] = data
        artifact = ModelArtifact(
            manifest,
            files,
            pickle_trusted=self._signing_key is not None or self._allow_unsigned_pickle,
            max_file_bytes=self._max_file_bytes,
        )
        artifact.verify()
        artifact.check_compatible()
        log.info("model_loaded", version=version, ref=ref, **self.describe())
        return artifact

    def collect_garbage(self, min_age_s: float = GARBAGE_AGE_S) -> list[str]:
        """Remove what interrupted saves left, once it is ``min_age_s`` old: the files of
        versions that never got a manifest, and the backend's temporary files. Committed
        versions are never touched. Returns what was removed."""
        cutoff = utc_now().timestamp() - min_age_s
        by_version: dict[str, list[str]] = {}
        for key in self._guard("listing versions", self._list, "versions/"):
            parts = key.split("/")
            if len(parts) == 3 and VERSION_PATTERN.match(parts[1]):
                by_version.setdefault(parts[1], []).append(parts[2])
        removed: list[str] = []
        for version, names in by_version.items():
            started = datetime.strptime(version, VERSION_FORMAT).replace(tzinfo=UTC).timestamp()
            if MANIFEST_FILE in names or started > cutoff:
                continue
            for name in names:
                self._guard("collecting garbage", self._delete, self._version_key(version, name))
                removed.append(self._version_key(version, name))
        for item in self._guard("collecting garbage", self._litter, cutoff):
            self._guard("collecting garbage", self._remove_litter, item)
            removed.append(item)
        if removed:
            log.info("garbage_collected", removed=len(removed), items=removed[:20], **self.describe())
        return removed

    # -- aliases -----------------------------------------------------------------------
    def _alias_state(self, alias: str) -> tuple[AliasRecord | None, str | None]:
        key = self._alias_key(self._check_alias(alias))
        token = self._guard("reading an alias", self._token, key)
        data = self._guard("reading an alias", self._read, key, METADATA_LIMIT)
        if data is None:
            return None, None
        try:
            raw = json.loads(data)
            record = AliasRecord(
                raw["alias"], raw["version"], tuple(raw.get("previous", ())), raw.get("updated_at", "")
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelStoreError(f"alias {alias!r} is unreadable: {exc}") from exc
        return record, token

    def alias(self, alias: str = CHAMPION) -> AliasRecord | None:
        return self._alias_state(alias)[0]

    def alias_token(self, alias: str = CHAMPION) -> str | None:
        """A cheap token that changes whenever the alias moves (for hot reload polling)."""
        token: str | None = self._guard("reading an alias", self._token, self._alias_key(self._check_alias(alias)))
        return token

    def aliases(self) -> dict[str, AliasRecord]:
        names = [
            k.removeprefix("aliases/").removesuffix(".json")
            for k in self._guard("listing aliases", self._list, "aliases/")
        ]
        records = {name: self.alias(name) for name in names if ALIAS_PATTERN.match(name)}
        return {name: record for name, record in records.items() if record is not None}

    def _move_alias(
        self, alias: str, target: str | None, action: HistoryAction, reason: str, **extra: Any
    ) -> AliasRecord:
        for _attempt in range(self._ALIAS_RETRIES):
            current, token = self._alias_state(alias)
            if target is None:  # rollback
                if current is None or not current.previous:
                    raise ModelStoreError(f"alias {alias!r} has no earlier version to roll back to")
                new = AliasRecord(alias, current.previous[-1], current.previous[:-1], utc_now().isoformat())
            else:
                if current is None:
                    previous: tuple[str, ...] = ()
                elif current.version == target:  # re-promoting the same version adds no history
                    previous = current.previous
                else:
                    previous = (*current.previous, current.version)
                new = AliasRecord(alias, target, previous, utc_now().isoformat())
            body = json.dumps(
                {
                    "alias": new.alias,
                    "version": new.version,
                    "previous": list(new.previous),
                    "updated_at": new.updated_at,
                }
            ).encode()
            try:
                self._guard("moving an alias", self._swap, self._alias_key(alias), body, token)
            except ConcurrentUpdateError:
                time.sleep(0.005 * (_attempt + 1))
                continue
            self._record(action, alias, new.version, current.version if current else None, reason, extra)
            log.info(
                "alias_moved",
                alias=alias,
                version=new.version,
                previous=current.version if current else None,
                action=action,
            )
            return new
        raise ConcurrentUpdateError(f"alias {alias!r} kept changing under us; try again")

    def promote(self, version: str, alias: str = CHAMPION, *, reason: str = "", forced: bool = False) -> AliasRecord:
        """Point ``alias`` at ``version``, remembering where it pointed before."""
        self.manifest(version)  # must exist
        return self._move_alias(alias, version, "force_promote" if forced else "promote", reason)

    def rollback(self, alias: str = CHAMPION, *, reason: str = "rollback") -> AliasRecord:
        """Point ``alias`` back at the version it pointed to before the last move."""
        return self._move_alias(alias, None, "rollback", reason)

    # -- idempotency -------------------------------------------------------------------
    @staticmethod
    def _claim_key(identity: str) -> str:
        return f"processed/{hashlib.sha256(identity.encode()).hexdigest()}.json"

    def _claim_state(self, identity: str) -> tuple[dict[str, Any] | None, str | None]:
        key = self._claim_key(identity)
        token = self._guard("reading a claim", self._token, key)
        data = self._guard("reading a claim", self._read, key, METADATA_LIMIT)
        return (json.loads(data) if data is not None else None), token

    def claim(self, identity: str, lease_s: float) -> Claim:
        """Claim the right to process an input exactly once (for at-least-once event delivery).

        The claim is a write-once marker; of two racing claimers exactly one wins. A claim
        whose holder failed (``fail``) or vanished (lease expired) can be taken over, so a
        retry after a failure still runs; a ``done`` claim never can.
        """
        key = self._claim_key(identity)
        now = utc_now()
        body = {
            "identity": identity,
            "status": "started",
            "at": now.isoformat(),
            "lease_until": now.timestamp() + lease_s,
        }
        state, token = self._claim_state(identity)
        if state is None:
            try:
                self._guard("claiming an input", self._write_new, key, json.dumps(body).encode())
                return Claim(identity, True, "claimed")
            except ModelVersionExistsError:
                state, token = self._claim_state(identity)
        assert state is not None
        if state.get("status") == "done":
            return Claim(identity, False, "already processed", state.get("version"))
        if state.get("status") == "started" and float(state.get("lease_until", 0)) > now.timestamp():
            return Claim(identity, False, "already being processed")
        try:  # failed or expired: take it over, unless another claimer just did
            self._guard("claiming an input", self._swap, key, json.dumps(body).encode(), token)
        except ConcurrentUpdateError:
            return Claim(identity, False, "already being processed")
        return Claim(identity, True, "claimed after an earlier attempt failed")

    def _settle_claim(self, identity: str, status: str, **fields: Any) -> None:
        key = self._claim_key(identity)
        _, token = self._claim_state(identity)
        body = {"identity": identity, "status": status, "at": utc_now().isoformat(), **fields}
        self._guard("settling a claim", self._swap, key, json.dumps(body).encode(), token)

    def complete_claim(self, identity: str, version: str | None) -> None:
        self._settle_claim(identity, "done", version=version)

    def fail_claim(self, identity: str, error: str) -> None:
        self._settle_claim(identity, "failed", error=error[:500])

    # -- history -----------------------------------------------------------------------
    def _record(
        self, action: HistoryAction, alias: str, version: str, previous: str | None, reason: str, extra: dict[str, Any]
    ) -> None:
        at = utc_now()
        body = json.dumps(
            {
                "at": at.isoformat(),
                "action": action,
                "alias": alias,
                "version": version,
                "previous": previous,
                "reason": reason,
                "extra": extra,
            }
        ).encode()
        key = f"history/{at.strftime('%Y%m%dT%H%M%S.%fZ')}-{action}-{alias}.json"
        try:
            self._guard("recording history", self._write_new, key, body)
        except CcmlError as exc:
            # The alias already moved; a lost history line must not turn that into a failure.
            log.warning("history_write_failed", key=key, error=str(exc))

    def history(self) -> list[HistoryEvent]:
        events = []
        for key in sorted(self._guard("listing history", self._list, "history/")):
            data = self._guard("reading history", self._read, key, METADATA_LIMIT)
            if data is None:
                continue
            raw = json.loads(data)
            events.append(
                HistoryEvent(
                    datetime.fromisoformat(raw["at"]).astimezone(UTC),
                    raw["action"],
                    raw["alias"],
                    raw["version"],
                    raw["previous"],
                    raw["reason"],
                    raw.get("extra", {}),
                )
            )
        return events


class Trainer(ABC):
    """Fits a pipeline on a validated table and returns the model with its evaluation."""

    name: ClassVar[str]

    def fit(self, table: ValidatedTable) -> TrainingResult:
        try:
            return self._fit(table)
        except CcmlError:
            raise
        except Exception as exc:
            raise TrainingError(f"{self.name} training failed: {exc}") from exc

    @abstractmethod
    def _fit(self, table: ValidatedTable) -> TrainingResult: ...

    def describe(self) -> dict[str, str]:
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
        return self.artifact.version or "unsaved"

    def predict_proba(self, records: Records) -> Probabilities:
        """Probability of completion for each record, in order."""
        if len(records) == 0:
            return np.empty(0, dtype=np.float64)
        try:
            probabilities = self._predict_proba(records)
        except CcmlError:
            raise
        except Exception as exc:
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
        except Exception as exc:
            raise PredictionError(f"model {self.version} failed to predict: {exc}") from exc

    def _predict_one(self, record: Mapping[str, Any]) -> float:
        return float(self._predict_proba([record])[0])

    def predict(self, records: Records) -> list[Prediction]:
        probabilities = self.predict_proba(records)
        return [self.to_prediction(float(p)) for p in probabilities]

    def to_prediction(self, probability: float) -> Prediction:
        completed = probability >= self.threshold
        return Prediction(probability, completed, self.labels[int(completed)])

    @abstractmethod
    def _predict_proba(self, records: Records) -> Probabilities: ...
