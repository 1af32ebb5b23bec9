"""Model artifacts and their manifests: what a model version is, byte for byte.

A version is a set of files (the fitted pipeline as skops, the ONNX graph) plus a JSON
manifest that records where the model came from, how good it was, and the size and sha256
of every file. Stores verify the signature (when a signing key is set) before reading any
file, then every file against the manifest; see ``ccml.core.model_files`` for why reading a
pipeline never runs code from the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ccml.core.decision import DecisionRule
from ccml.core.drift import DriftReference
from ccml.core.errors import ArtifactIntegrityError
from ccml.core.evaluation_records import ConfusionMatrix as ConfusionMatrix
from ccml.core.evaluation_records import CrossValidation as CrossValidation
from ccml.core.evaluation_records import Evaluation as Evaluation
from ccml.core.evaluation_records import Metrics as Metrics
from ccml.core.model_files import ARTIFACT_FILES, PICKLE_FILE, SKOPS_FILE, dump_pipeline, load_pickle, load_pipeline
from ccml.core.schema import FeatureSchema

MODEL_FILE = SKOPS_FILE  # the fitted pipeline of every version ccml saves
MANIFEST_FILE = "manifest.json"
# The cap ``ModelArtifact`` applies when a caller does not pass the configured one.
DEFAULT_MAX_FILE_BYTES = 512 * 1024**2
_TRACKED_LIBRARIES = ("scikit-learn", "numpy", "pandas", "scipy", "joblib", "ccml")


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex sha256 of ``data``, the form manifests record."""
    return hashlib.sha256(data).hexdigest()


def utc_now() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def library_versions() -> dict[str, str]:
    """Return the versions of Python and of the libraries a pipeline depends on; absent ones are left out."""
    found = {"python": platform.python_version()}
    for name in _TRACKED_LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


class _Model(BaseModel):
    # A holdout with one class has NaN ranking metrics; plain JSON would write them as null,
    # which then fails to load and makes the whole store unreadable. "NaN" strings round-trip.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


class HoldoutSpec(_Model):
    """Enough to rebuild the holdout split from the same data."""

    fraction: float
    random_state: int
    stratified: bool = True
    train_rows: int
    holdout_rows: int
    index_sha256: str = Field(description="sha256 of the holdout rows' positions in the deduplicated table")


class DataInfo(_Model):
    """The training data a version was fitted on: its sha256, where it came from, and its row counts."""

    fingerprint: str = Field(description="sha256 of the input bytes")
    source: dict[str, str]
    rows_read: int
    duplicates_dropped: int
    rows_used: int
    positives: int
    # Left out when empty, so manifests written before the field existed dump (and verify) as before.
    columns_ignored: Annotated[list[str], Field(exclude_if=lambda columns: not columns)] = Field(
        default_factory=list, description="CSV columns that are neither features, the target nor id columns"
    )
    missing_values: Annotated[dict[str, int], Field(exclude_if=lambda counts: not counts)] = Field(
        default_factory=dict, description="Missing cells per feature in the rows used (features with none left out)"
    )


class ArtifactFile(_Model):
    """The size (bytes) and sha256 one of a version's files must have: checked before the file is used."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class PromotionDecision(_Model):
    """The promotion gate's verdict on a challenger: whether it was promoted, why, and the scores compared."""

    promoted: bool
    reason: str
    metric: str
    challenger_score: float
    champion_score: float | None = None
    champion_version: str | None = None
    tolerance: float
    floor: float
    forced: bool = False


class Manifest(_Model):
    """Everything known about one model version. Written once, next to its files."""

    format_version: int = 1
    version: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    trainer: str
    params: dict[str, Any]
    schema_: dict[str, Any] = Field(alias="schema")
    schema_fingerprint: str
    data: DataInfo
    holdout: HoldoutSpec
    evaluation: Evaluation
    libraries: dict[str, str] = Field(default_factory=library_versions)
    files: dict[str, ArtifactFile] = Field(default_factory=dict)
    notes: dict[str, str] = Field(default_factory=dict)
    promotion: PromotionDecision | None = None
    # Left out when unset (manifests of plugins, and those written before ccml recorded them).
    calibration: Annotated[str | None, Field(exclude_if=lambda value: value is None)] = None
    decision: Annotated[DecisionRule | None, Field(exclude_if=lambda rule: rule is None)] = None
    # Each feature's training distribution, for drift monitoring (ccml.core.drift). Left out when
    # None, so manifests written before the field existed dump (and verify) as before.
    reference: Annotated[DriftReference | None, Field(exclude_if=lambda reference: reference is None)] = None
    signature: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("files")
    @classmethod
    def _known_files(cls, files: dict[str, ArtifactFile]) -> dict[str, ArtifactFile]:
        # File names become store keys: "../x" or an absolute path must never be followed.
        unknown = sorted(set(files) - ARTIFACT_FILES)
        if unknown:
            shown = [name[:60] for name in unknown[:5]]
            raise ValueError(f"unknown file name(s) {shown}; a version holds only {sorted(ARTIFACT_FILES)}")
        return files

    def document(self) -> dict[str, Any]:
        """The manifest as ``GET /model`` and ``ccml models show`` show it: its JSON, with the fairness
        report's flags on top as ``fairness_flags`` (where nobody has to dig for them) when it has one."""
        shown: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        if self.evaluation.fairness is not None:
            shown["fairness_flags"] = self.evaluation.fairness.flagged
        return shown

    def to_json(self) -> bytes:
        """Return the stored form: indented JSON, the schema under its ``schema`` key, NaN metrics as strings."""
        return self.model_dump_json(by_alias=True, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse a stored manifest; raises pydantic's ``ValidationError`` for anything that is not one."""
        return cls.model_validate_json(data)

    def signing_payload(self) -> bytes:
        """Canonical bytes the HMAC covers: the manifest without its signature."""
        body = self.model_dump(mode="json", by_alias=True, exclude={"signature"})
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: bytes) -> Manifest:
        """Return a copy signed with ``key``: the HMAC-SHA256 of ``signing_payload`` in ``signature``."""
        return self.model_copy(update={"signature": hmac.new(key, self.signing_payload(), "sha256").hexdigest()})

    def verify_signature(self, key: bytes) -> None:
        """Raise ``ArtifactIntegrityError`` unless the manifest is signed by ``key`` (HMAC, constant-time compare)."""
        if self.signature is None:
            raise ArtifactIntegrityError(f"model {self.version} is not signed, but a signing key is configured")
        expected = hmac.new(key, self.signing_payload(), "sha256").hexdigest()
        if not hmac.compare_digest(expected, self.signature):
            raise ArtifactIntegrityError(f"model {self.version} has an invalid signature")


def _major_minor(text: str) -> tuple[str, ...]:
    return tuple(text.split(".")[:2])


class ModelArtifact:
    """A model version's manifest and verified file bytes; the pipeline is rebuilt lazily.

    Lazy loading lets a backend that serves another file (the ONNX graph) avoid importing
    scikit-learn at all. ``pickle_trusted`` says whether a pre-skops pickle may be unpickled:
    stores set it only when the manifest's signature was verified or the operator opted in.
    """

    def __init__(
        self,
        manifest: Manifest,
        files: Mapping[str, bytes],
        pipeline: Any = None,
        *,
        pickle_trusted: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.manifest = manifest
        self.files = dict(files)
        self._pipeline = pipeline
        self.pickle_trusted = pickle_trusted
        self.max_file_bytes = max_file_bytes

    @classmethod
    def from_pipeline(
        cls, pipeline: Any, manifest: Manifest, extras: Mapping[str, bytes] | None = None
    ) -> ModelArtifact:
        """Serialize a fitted pipeline and record each file's checksum in the manifest."""
        files = {MODEL_FILE: dump_pipeline(pipeline), **(extras or {})}
        manifest = manifest.model_copy(
            update={
                "files": {name: ArtifactFile(sha256=sha256_hex(data), size=len(data)) for name, data in files.items()}
            }
        )
        return cls(manifest, files, pipeline)

    @property
    def version(self) -> str | None:
        """The version id, or None until a store has saved the artifact."""
        return self.manifest.version

    def trained_on(self, schema: FeatureSchema) -> bool:
        """Whether this model takes exactly ``schema``'s features (names, types, values)."""
        return bool(self.manifest.schema_.get("features") == schema.model_dump(mode="json")["features"])

    def verify(self, signing_key: bytes | None = None) -> None:
        """Check every file against the manifest (and the signature when a key is given)."""
        if signing_key is not None:
            self.manifest.verify_signature(signing_key)
        missing = sorted(set(self.manifest.files) - set(self.files))
        if missing:
            raise ArtifactIntegrityError(f"model {self.version}: files missing: {missing}")
        for name, expected in self.manifest.files.items():
            if sha256_hex(self.files[name]) != expected.sha256:
                raise ArtifactIntegrityError(f"model {self.version}: {name} does not match its sha256 in the manifest")

    def check_compatible(self) -> None:
        """Refuse a pipeline made by another scikit-learn major.minor (its state is not portable)."""
        made_with = self.manifest.libraries.get("scikit-learn")
        try:
            installed = version("scikit-learn")
        except PackageNotFoundError:
            return  # nothing here can rebuild it anyway; a non-sklearn backend may still serve it
        if made_with is not None and _major_minor(made_with) != _major_minor(installed):
            raise ArtifactIntegrityError(
                f"model {self.version} was made with scikit-learn {made_with}, this is {installed}: "
                "retrain it, or serve it with the matching version"
            )

    @property
    def pipeline(self) -> Any:
        """The fitted scikit-learn pipeline, rebuilt on first use (never from an unauthenticated pickle)."""
        if self._pipeline is None:
            self.check_compatible()
            name = str(self.version)
            if MODEL_FILE in self.files:
                self._pipeline = load_pipeline(self.files[MODEL_FILE], name, self.max_file_bytes)
            elif PICKLE_FILE in self.files:
                if not self.pickle_trusted:
                    raise ArtifactIntegrityError(
                        f"model {name} is a pickle ({PICKLE_FILE}, saved before ccml used skops) without a verified "
                        "signature; unpickling it would run any code it holds. Retrain it, sign the store "
                        "(CCML_SIGNING_KEY), or accept that risk with CCML_ALLOW_UNSIGNED_PICKLE=true"
                    )
                self._pipeline = load_pickle(self.files[PICKLE_FILE], name)
            else:
                raise ArtifactIntegrityError(f"model {name} has no pipeline file ({MODEL_FILE})")
        return self._pipeline
