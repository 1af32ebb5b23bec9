"""The storage primitive a model store backend implements: bytes under keys.

Five operations carry every guarantee the store gives (see ``ccml.core.store``): a bounded
read, a write that fails if the key exists, a compare-and-swap on a change token, a listing,
and the token itself. Deleting exists only to collect garbage. Backends implement the
protected hooks; the public methods wrap whatever a backend's library raises into
``ModelStoreError`` naming the backend, and keep their types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Final, TypeVar

from ccml.core.errors import ArtifactIntegrityError, CcmlError, ModelStoreError

T = TypeVar("T")
# Manifests, aliases, claims and history records are small JSON: a larger object is not ours.
METADATA_LIMIT: Final = 1024**2


class ObjectStore(ABC):
    """Bytes under ``/``-separated keys, with write-once and compare-and-swap writes."""

    # Whether saves also remove what interrupted saves left (see ``ModelStore.collect_garbage``).
    collects_garbage_on_save: ClassVar[bool] = True

    # -- hooks -------------------------------------------------------------------------
    @abstractmethod
    def _read(self, key: str, limit: int) -> bytes | None:
        """The object's bytes, or None if absent.

        Raise ``ArtifactIntegrityError`` if it holds more than ``limit`` bytes (read at most
        ``limit + 1`` to know) or is not a plain stored object (a FIFO, a device, a link).
        """

    @abstractmethod
    def _write_new(self, key: str, data: bytes) -> None:
        """Create an object; raise ``ObjectExistsError`` if it exists (atomically)."""

    @abstractmethod
    def _swap(self, key: str, data: bytes, expected: str | None) -> None:
        """Replace an object if its token is still ``expected`` (None: it must be absent).

        Raise ``ConcurrentUpdateError`` otherwise. Readers see the old or the new bytes, never a mix.
        """

    @abstractmethod
    def _token(self, key: str) -> str | None:
        """A cheap change token for the object (ETag, inode+mtime), or None if absent."""

    @abstractmethod
    def _list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``."""

    @abstractmethod
    def _delete(self, key: str) -> None:
        """Remove an object (absent is fine). Used only to collect garbage."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Where the objects live, safe to log: no secrets."""

    def _litter(self, older_than: float) -> list[str]:
        """Backend-specific leftovers (temporary files) last changed before ``older_than``
        (a POSIX time), for ``_remove_litter``. None by default."""
        return []

    def _remove_litter(self, item: str) -> None:
        """Remove one item that ``_litter`` returned."""
        raise NotImplementedError(f"{type(self).__name__} returns litter but cannot remove it")

    # -- the guarded, typed operations -------------------------------------------------
    def _guard(self, action: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except CcmlError:
            raise
        except Exception as exc:  # the backend's boundary: its library's errors become ours
            raise ModelStoreError(f"{action} failed on {self.location()}: {exc}") from exc

    def location(self) -> str:
        """Return where the objects live, for messages: ``describe()``'s ``location``, else the class name."""
        return self.describe().get("location", type(self).__name__)

    def read(self, key: str, limit: int, what: str = "an object") -> bytes | None:
        """Return the bytes under ``key``, or None if there is no such object; ``what`` names it in errors.

        Raises:
            ArtifactIntegrityError: the object holds more than ``limit`` bytes, or is not a plain stored object.
            ModelStoreError: the backend failed.
        """
        return self._guard(f"reading {what}", lambda: self._read(key, limit))

    def write_new(self, key: str, data: bytes, what: str = "an object") -> None:
        """Create the object ``key`` holding ``data``; never overwrites (of racing writers, exactly one succeeds).

        Raises:
            ObjectExistsError: ``key`` already exists.
            ModelStoreError: the backend failed.
        """
        self._guard(f"writing {what}", lambda: self._write_new(key, data))

    def swap(self, key: str, data: bytes, expected: str | None, what: str = "an object") -> None:
        """Replace the object ``key`` if its change token is still ``expected`` (None: it must not exist yet).

        Readers see the old bytes or the new ones, never a mix.

        Raises:
            ConcurrentUpdateError: another writer changed the object since ``expected`` was read.
            ModelStoreError: the backend failed.
        """
        self._guard(f"updating {what}", lambda: self._swap(key, data, expected))

    def token(self, key: str, what: str = "an object") -> str | None:
        """Return the object's change token (it changes with every write), or None if absent; cheap enough to poll."""
        return self._guard(f"reading {what}", lambda: self._token(key))

    def list_keys(self, prefix: str, what: str = "objects") -> list[str]:
        """Return every key under ``prefix`` (whole keys, in no particular order)."""
        return self._guard(f"listing {what}", lambda: self._list(prefix))

    def delete(self, key: str) -> None:
        """Remove the object ``key`` (absent is fine): only to collect garbage, never for a committed version."""
        self._guard("collecting garbage", lambda: self._delete(key))

    def litter(self, older_than: float) -> list[str]:
        """Return the backend's leftovers (temporary files) last changed before ``older_than``, a POSIX time."""
        return self._guard("collecting garbage", lambda: self._litter(older_than))

    def remove_litter(self, item: str) -> None:
        """Remove one item that ``litter`` returned."""
        self._guard("collecting garbage", lambda: self._remove_litter(item))

    @staticmethod
    def too_large(key: str, limit: int) -> ArtifactIntegrityError:
        """The error a backend raises for an object over a read's limit."""
        return ArtifactIntegrityError(f"{key} holds more than {limit} bytes: refused")
