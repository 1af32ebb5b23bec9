"""Helpers of the fault scenarios: the shared survival check, figures, and the faults themselves
(S3 errors, SIGKILLed saves, a full disk, damaged files, races)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from ccml.core.artifact import MANIFEST_FILE
from ccml.core.contracts import ModelStore
from ccml.core.errors import ArtifactIntegrityError, CcmlError
from ccml.core.model_files import ARTIFACT_FILES
from ccml.core.types import TrainingResult
from ccml.storage.local import LocalModelStore
from ccml.storage.s3 import S3ModelStore
from tests.reliability.figures import record

T = TypeVar("T")
ENDPOINT = "https://s3.us-east-1.amazonaws.com"
S3_KINDS = ("500 InternalError", "read timeout", "connect timeout")
# Every key a store may hold; anything else is data nobody asked for. A version holds its
# manifest and the files a manifest may name (ccml.core.model_files).
_VERSION_FILES = "|".join(re.escape(name) for name in sorted({*ARTIFACT_FILES, MANIFEST_FILE}))
LAYOUT = re.compile(
    rf"^(versions/\d{{8}}T\d{{6}}\.\d{{6}}Z/({_VERSION_FILES})"
    r"|aliases/[a-z][a-z0-9_-]*\.json|history/[^/]+\.json|processed/[0-9a-f]{64}\.json)$"
)


# -- figures -----------------------------------------------------------------------------
@contextlib.contextmanager
def scenario(case: str) -> Iterator[None]:
    """Record one fault scenario for ``make reliability``: survived, or not (a skip is neither)."""
    try:
        yield
    except pytest.skip.Exception:
        raise
    except BaseException:
        record("faults", case, cases=1, failures=1)
        raise
    record("faults", case, cases=1, failures=0)


# -- the survival check ------------------------------------------------------------------
def committed(store: ModelStore) -> set[str]:
    """Versions whose manifest was written (the commit point), from the raw keys."""
    return {key.split("/")[1] for key in store._list("versions/") if key.endswith("/" + MANIFEST_FILE)}


def interrupted(store: ModelStore) -> set[str]:
    """Keys of versions that never got a manifest: what an interrupted save left."""
    done = committed(store)
    return {key for key in store._list("versions/") if key.split("/")[1] not in done}


def litter(store: ModelStore) -> set[str]:
    """Temporary files of a local store (writes a kill interrupted before their rename)."""
    if not isinstance(store, LocalModelStore) or not store.root.exists():
        return set()
    return {str(path) for path in store.root.rglob(".*.tmp")}


def seed(store: ModelStore, training: TrainingResult) -> str:
    """Save the session's trained artifact and make it champion: the "old" version of a scenario."""
    version = store.save(training.artifact).id
    store.promote(version, reason="seeded by the test")
    return version


def left_by_one_save(store: ModelStore, names: Collection[str]) -> set[str]:
    """The keys an interrupted save left, checked to be the files ``names`` of a single version."""
    keys = interrupted(store)
    assert sorted(key.rsplit("/", 1)[1] for key in keys) == sorted(names)
    assert len({key.split("/")[1] for key in keys}) == (1 if names else 0)
    return keys


def assert_survived(
    store: ModelStore, *, before: Iterable[str], champion_in: Collection[str | None], damaged: Collection[str] = ()
) -> list[str]:
    """The post-condition of every fault: the store reads, nothing committed is lost, the champion
    is the old or the new version, and the store holds nothing outside its layout.

    ``damaged`` versions (a manifest broken by hand) must be refused with ccml's own error, by
    ``versions()`` and by ``load``; every other committed version lists and loads, checksums verified.
    Returns the committed version ids.
    """
    strays = sorted(key for key in store._list("") if not LAYOUT.match(key))
    assert not strays, f"data outside the store's layout: {strays}"
    ids = committed(store)
    assert not set(before) - ids, f"committed versions lost: {sorted(set(before) - ids)}"
    if damaged:
        with pytest.raises(CcmlError) as listing:
            store.versions()
        assert any(version in str(listing.value) for version in damaged), listing.value
    else:
        assert [version.id for version in store.versions()] == sorted(ids)  # interrupted saves stay invisible
    for version in sorted(ids):
        if version in damaged:
            with pytest.raises(ArtifactIntegrityError, match=version):
                store.load(version)
        else:
            assert store.load(version).version == version
    pointer = store.alias("champion")
    champion = pointer.version if pointer else None
    assert champion in champion_in, f"champion is {champion}, expected one of {sorted(map(str, champion_in))}"
    if champion in ids and champion not in damaged:
        assert store.load("champion").version == champion
    strangers = [event for event in store.history() if event.version not in ids]
    assert not strangers, f"history names versions that were never committed: {strangers}"
    return sorted(ids)


def assert_collected(store: ModelStore, expected: Collection[str]) -> None:
    """Garbage collection removes exactly what interrupted saves left, and then nothing is left."""
    removed = store.collect_garbage(min_age_s=0)
    assert sorted(removed) == sorted(expected)
    assert (interrupted(store), litter(store)) == (set(), set())


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message
    assert "\n" not in message, message  # one line, not a traceback
    return message


def caused_by(error: BaseException, cause: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None and seen is not cause:
        seen = seen.__cause__ or seen.__context__
    return seen is cause


# -- S3 faults ---------------------------------------------------------------------------
def s3_error(kind: str, operation: str) -> Exception:
    if kind == "500 InternalError":
        response: Any = {
            "Error": {"Code": "InternalError", "Message": "We encountered an internal error. Please try again."},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }
        return ClientError(response, operation)
    if kind == "read timeout":
        return ReadTimeoutError(endpoint_url=ENDPOINT)
    return ConnectTimeoutError(endpoint_url=ENDPOINT)


def fail_s3(monkeypatch: pytest.MonkeyPatch, operation: str, key_pattern: str, error: Exception) -> list[str]:
    """Make every boto3 client's ``operation`` (``"PutObject"``) raise ``error`` for matching keys.

    Like ``tests.s3.helpers.inject_fault``, but on the client class: the handler builds its own
    clients (one per data object), so no instance is at hand. ``_make_api_call`` sits above
    botocore's retry loop, so the error stands for a fault that outlasted the retries.
    Returns the keys it hit.
    """
    from botocore.client import BaseClient

    original = BaseClient._make_api_call  # type: ignore[attr-defined]  # private: not in the stubs
    pattern = re.compile(key_pattern)
    hits: list[str] = []

    def faulty(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name == operation and pattern.search(str(api_params.get("Key", ""))):
            hits.append(str(api_params["Key"]))
            raise error
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", faulty)
    return hits


def like_s3(monkeypatch: pytest.MonkeyPatch, read_latency_s: float = 0.0) -> None:
    """Make moto behave as S3 does where races depend on it.

    Conditional PutObject becomes atomic (see ``tests/s3/conftest.py``: moto checks ``If-Match`` and
    stores the object in two unlocked steps, so racing writers could both pass; a writer that used no
    condition at all is still caught). GetObject can take ``read_latency_s``, as S3's tens of
    milliseconds do, which widens a read-then-write race to what it is on AWS.
    """
    from moto.s3.responses import S3Response

    put, get = S3Response.put_object, S3Response.get_object
    lock = threading.Lock()

    def put_object(self: S3Response) -> Any:
        with lock:
            return put(self)

    def get_object(self: S3Response) -> Any:
        time.sleep(read_latency_s)
        return get(self)

    monkeypatch.setattr(S3Response, "put_object", put_object)
    monkeypatch.setattr(S3Response, "get_object", get_object)


# -- damage by hand ----------------------------------------------------------------------
def overwrite(store: ModelStore, key: str, data: bytes) -> None:
    """Replace an object behind the store's back (bit rot, a careless operator, an attacker)."""
    if isinstance(store, LocalModelStore):
        store._path(key).write_bytes(data)
    elif isinstance(store, S3ModelStore):
        store.client.put_object(Bucket=store.bucket, Key=store._key(key), Body=data)
    else:
        raise TypeError(f"cannot overwrite in {type(store).__name__}")


def damaged_manifest(original: bytes, damage: str) -> bytes:
    if damage == "truncated JSON":
        return original[: len(original) // 2]
    document = json.loads(original)
    document.update(version=20250101, files="model.skops", evaluation=[])  # wrong types, valid JSON
    return json.dumps(document).encode()


# -- a full disk -------------------------------------------------------------------------
@contextlib.contextmanager
def tmpfs(mountpoint: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``mountpoint`` (needs root, as in CI); skips the test if it cannot mount."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs for the full-disk scenario: {mounted.stderr.strip() or 'no root'}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(disk: Path, leave_pages: int) -> Path:
    """Fill ``disk`` with one file until exactly ``leave_pages`` pages stay free."""
    stats = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - leave_pages * stats.f_frsize))
    assert os.statvfs(disk).f_bavail == leave_pages
    return filler


def pages(disk: Path, *sizes: int) -> int:
    page = os.statvfs(disk).f_frsize
    return sum(-(-size // page) for size in sizes)


def enospc_at_fsync(monkeypatch: pytest.MonkeyPatch, name_pattern: str) -> list[str]:
    """Make ``os.fsync`` of a file whose name matches fail with ENOSPC, as a full filesystem with
    delayed allocation reports it: the write "succeeded", the flush to disk does not."""
    real = os.fsync
    pattern = re.compile(name_pattern)
    hits: list[str] = []

    def fsync(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        if pattern.search(name):
            hits.append(name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return hits


# -- races -------------------------------------------------------------------------------
def race(count: int, action: Callable[[], T], timeout_s: float = 120) -> list[T]:
    """Run ``action`` on ``count`` threads released at the same instant; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(action())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    assert not any(thread.is_alive() for thread in threads), f"a racer hung for {timeout_s} s"
    if errors:
        raise errors[0]
    return results
