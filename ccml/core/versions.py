"""Model versions over an ``ObjectStore``: write-once, committed by their manifest, verified on load.

Layout: ``versions/<id>/<file>`` for each file, ``versions/<id>/manifest.json`` written last.
A version exists once its manifest does, so a crash mid-save leaves no visible version; what
it left is removed by ``collect_garbage`` once it is old enough not to belong to a running save.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import structlog
from pydantic import ValidationError

from ccml.core.artifact import DEFAULT_MAX_FILE_BYTES, MANIFEST_FILE, Manifest, ModelArtifact, utc_now
from ccml.core.errors import ArtifactIntegrityError, CcmlError, ModelNotFoundError, ModelStoreError, ObjectExistsError
from ccml.core.objects import METADATA_LIMIT, ObjectStore
from ccml.core.types import ModelVersion

log = structlog.get_logger(__name__)

VERSION_PATTERN: Final = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")
VERSION_FORMAT: Final = "%Y%m%dT%H%M%S.%fZ"
# What an interrupted save leaves behind is removed once it is this old (no save takes an hour).
GARBAGE_AGE_S: Final = 3600.0


def new_version_id() -> str:
    """Return a new version id: the UTC time to the microsecond, so ids sort by creation."""
    return utc_now().strftime(VERSION_FORMAT)


def version_key(version: str, name: str) -> str:
    """Return the store key of the file ``name`` of ``version``."""
    return f"versions/{version}/{name}"


class ModelVersions:
    """Saves, lists, reads and verifies versions; knows nothing of aliases."""

    def __init__(
        self,
        objects: ObjectStore,
        signing_key: bytes | None = None,
        *,
        allow_unsigned_pickle: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        new_id: Callable[[], str] = new_version_id,
    ) -> None:
        self.objects = objects
        self.new_id = new_id
        self.signing_key = signing_key
        self.allow_unsigned_pickle = allow_unsigned_pickle
        self.max_file_bytes = max_file_bytes

    def save(self, artifact: ModelArtifact, version: str | None = None) -> ModelVersion:
        """Store the artifact as a new version; files first, the manifest last (commit point).

        ``version``: an id reserved with ``new_id`` before saving (the workflow's, so the version's
        report can name it); taken if it is still free, else the next free id is.
        """
        reserved = version if version is not None and VERSION_PATTERN.match(version) else None
        for attempt in range(5):
            version = reserved if attempt == 0 and reserved is not None else self.new_id()
            manifest = artifact.manifest.model_copy(update={"version": version})
            if self.signing_key is not None:
                manifest = manifest.signed(self.signing_key)
            try:
                for name, data in artifact.files.items():
                    self.objects.write_new(version_key(version, name), data, "an artifact")
            except ObjectExistsError:
                time.sleep(0.001)  # two saves in the same microsecond: take the next id
                continue
            self.objects.write_new(version_key(version, MANIFEST_FILE), manifest.to_json(), "a manifest")
            log.info("model_saved", version=version, **self.objects.describe())
            if self.objects.collects_garbage_on_save:
                try:
                    self.collect_garbage()
                except CcmlError as exc:  # the version is saved; litter can wait for the next save
                    log.warning("garbage_collection_failed", error=str(exc))
            return ModelVersion(version, manifest)
        raise ModelStoreError("could not allocate a new version id")

    def ids(self) -> list[str]:
        """Every committed version id, oldest first."""
        keys = self.objects.list_keys("versions/", "versions")
        return sorted(
            {
                key.split("/")[1]
                for key in keys
                if key.endswith("/" + MANIFEST_FILE) and VERSION_PATTERN.match(key.split("/")[1])
            }
        )

    def manifest(self, version: str) -> Manifest:
        """Return a committed version's manifest.

        Raises:
            ModelNotFoundError: ``version`` is not a version id, or no such version is committed.
            ArtifactIntegrityError: the manifest is over ``METADATA_LIMIT`` bytes or not a valid manifest.
        """
        if not VERSION_PATTERN.match(version):
            raise ModelNotFoundError(f"{version!r} is not a version id")
        data = self.objects.read(version_key(version, MANIFEST_FILE), METADATA_LIMIT, "a manifest")
        if data is None:
            raise ModelNotFoundError(f"no model version {version}")
        try:
            return Manifest.from_json(data)
        except ValidationError as exc:  # one line: what is wrong where, not pydantic's report
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors()[:5])
            raise ArtifactIntegrityError(f"manifest of {version} is unreadable: {problems[:500]}") from exc

    def load(self, version: str) -> ModelArtifact:
        """Read and verify a version. Nothing is deserialized here.

        The signature (with a key) is checked before any file is read; each file is read only
        up to the size its manifest gives (and never beyond ``max_file_bytes``), then checked
        against its sha256.
        """
        manifest = self.manifest(version)
        if self.signing_key is not None:
            manifest.verify_signature(self.signing_key)
        files: dict[str, bytes] = {}
        for name, entry in manifest.files.items():
            if entry.size > self.max_file_bytes:
                raise ArtifactIntegrityError(
                    f"model {version}: {name} is {entry.size} bytes, over CCML_MAX_ARTIFACT_BYTES={self.max_file_bytes}"
                )
            data = self.objects.read(version_key(version, name), entry.size, "an artifact")
            if data is None:
                raise ModelNotFoundError(f"model {version}: file {name} is missing")
            files[name] = data
        artifact = ModelArtifact(
            manifest,
            files,
            pickle_trusted=self.signing_key is not None or self.allow_unsigned_pickle,
            max_file_bytes=self.max_file_bytes,
        )
        artifact.verify()
        artifact.check_compatible()
        return artifact

    def collect_garbage(self, min_age_s: float = GARBAGE_AGE_S) -> list[str]:
        """Remove what interrupted saves left, once it is ``min_age_s`` old: the files of
        versions that never got a manifest, and the backend's temporary files. Committed
        versions are never touched. Returns what was removed."""
        cutoff = utc_now().timestamp() - min_age_s
        by_version: dict[str, list[str]] = {}
        for key in self.objects.list_keys("versions/", "versions"):
            parts = key.split("/")
            if len(parts) == 3 and VERSION_PATTERN.match(parts[1]):
                by_version.setdefault(parts[1], []).append(parts[2])
        removed: list[str] = []
        for version, names in by_version.items():
            started = datetime.strptime(version, VERSION_FORMAT).replace(tzinfo=UTC).timestamp()
            if MANIFEST_FILE in names or started > cutoff:
                continue
            for name in names:
                self.objects.delete(version_key(version, name))
                removed.append(version_key(version, name))
        for item in self.objects.litter(cutoff):
            self.objects.remove_litter(item)
            removed.append(item)
        if removed:
            log.info("garbage_collected", removed=len(removed), items=removed[:20], **self.objects.describe())
        return removed
