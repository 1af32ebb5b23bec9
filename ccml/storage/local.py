"""Local filesystem backends: CSV files as data, a directory tree as the model store."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ccml.core.contracts import DataSource, ModelStore
from ccml.core.errors import ArtifactIntegrityError, ConcurrentUpdateError, DataSourceError, ObjectExistsError
from ccml.core.settings import Settings
from ccml.core.types import Dataset
from ccml.storage.csv_text import read_csv_text


class LocalDataSource(DataSource):
    """A CSV file on the local filesystem."""

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes

    def describe(self) -> dict[str, str]:
        """Return the backend name and the file's path (safe to log)."""
        return {"backend": "local", "location": str(self.path)}

    def _load(self) -> Dataset:
        try:
            stat = self.path.stat()
            if self.max_bytes is not None and stat.st_size > self.max_bytes:
                raise DataSourceError(f"{self.path} is {stat.st_size} bytes, over the limit of {self.max_bytes}")
            data = self.path.read_bytes()
        except OSError as exc:
            raise DataSourceError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        frame = read_csv_text(data, str(self.path))
        return Dataset(
            frame=frame,
            fingerprint=hashlib.sha256(data).hexdigest(),
            source=self.describe(),
            identity=f"file://{self.path.resolve()}@{stat.st_mtime_ns}:{stat.st_size}",
        )


class LocalModelStore(ModelStore):
    """A model store in a directory. Writes go to a temporary file first, then a link or
    rename makes them visible atomically, so readers never see half a file."""

    def __init__(self, root: Path, signing_key: bytes | None = None, **options: Any) -> None:
        super().__init__(signing_key, **options)
        self.root = Path(root)

    def describe(self) -> dict[str, str]:
        """Return the backend name and the store's root directory (safe to log)."""
        return {"backend": "local", "location": str(self.root)}

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _read(self, key: str, limit: int) -> bytes | None:
        # O_NONBLOCK: opening a FIFO planted in the store must not hang the reader; O_NOFOLLOW:
        # a link must not lead the store outside its root (or to /dev/zero).
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ArtifactIntegrityError(f"{key} is a symbolic link: refused") from exc
            raise
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ArtifactIntegrityError(f"{key} is not a regular file: refused")
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise self.too_large(key, limit)
        return data

    def _delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # a version folder emptied by the collector goes too
            path.parent.rmdir()

    def _litter(self, older_than: float) -> list[str]:
        # Temporary files of writes that a kill interrupted between mkstemp and link/rename.
        if not self.root.is_dir():
            return []
        return [
            str(path)
            for path in self.root.rglob(".*.tmp")
            if path.is_file() and not path.is_symlink() and path.lstat().st_mtime < older_than
        ]

    def _remove_litter(self, item: str) -> None:
        Path(item).unlink(missing_ok=True)

    def _temporary(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o644)  # mkstemp's 0600 would hide the store from a non-root server
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)  # a failed write must not leave litter behind
            raise
        return Path(name)

    def _write_new(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temporary = self._temporary(path, data)
        try:
            os.link(temporary, path)  # fails if the name exists: write-once, atomically
        except FileExistsError as exc:
            raise ObjectExistsError(f"{key} already exists") from exc
        finally:
            temporary.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(f".{path.name}.lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _token(self, key: str) -> str | None:
        try:
            stat = self._path(key).stat()
        except FileNotFoundError:
            return None
        return f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}"

    def _swap(self, key: str, data: bytes, expected: str | None) -> None:
        path = self._path(key)
        with self._locked(path):
            if self._token(key) != expected:
                raise ConcurrentUpdateError(f"{key} changed since it was read")
            temporary = self._temporary(path, data)
            try:
                os.replace(temporary, path)
            finally:
                temporary.unlink(missing_ok=True)  # gone after a successful rename

    def _list(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return [
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        ]


def build_local_model_store(settings: Settings) -> LocalModelStore:
    """Return the model store in ``CCML_HOME``'s ``models`` directory, with the configured store options."""
    return LocalModelStore(settings.models_root, **settings.store_options())


def build_local_data_source(settings: Settings, location: str) -> LocalDataSource:
    """Return a data source for a local path or ``file://`` URI (read only on ``load``)."""
    return LocalDataSource(Path(location.removeprefix("file://")))
