"""Hostile model versions, planted the way an attacker with write access to a store would.

Each ``plant`` writes a complete version through the store's own primitive (so it works for
every backend) with every checksum in its manifest made to match, as the hand that wrote the
file would make it. Payloads that run code create ``marker``: a test passes only if that file
never appears.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, Final

import numpy as np
import skops.io as sio
from sklearn.preprocessing import StandardScaler

from ccml.core.artifact import MANIFEST_FILE, MODEL_FILE, ModelArtifact, sha256_hex
from ccml.core.contracts import ModelStore
from ccml.core.model_files import ONNX_FILE, PICKLE_FILE
from ccml.storage.local import LocalModelStore

# Kinds every backend can hold, then the ones only a filesystem can (special files).
PORTABLE: Final = ("pickle_payload", "untrusted_skops", "not_a_pipeline", "junk_onnx", "path_traversal", "oversized")
LOCAL_ONLY: Final = ("fifo", "dev_zero")
KINDS: Final = PORTABLE + LOCAL_ONLY


class Payload:
    """Unpickling this runs ``touch marker``: the classic pickle attack."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


class Trap:
    """An object whose rebuilding would create the marker: skops must refuse its type."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).touch()
        self.__dict__.update(state)


def _write(store: ModelStore, version: str, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    for name, data in files.items():
        store._write_new(f"versions/{version}/{name}", data)
    store._write_new(f"versions/{version}/{MANIFEST_FILE}", json.dumps(manifest).encode())


def _manifest(base: ModelArtifact, version: str, files: dict[str, bytes]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(base.manifest.to_json())
    document.update(version=version, signature=None, promotion=None)
    document["files"] = {name: {"sha256": sha256_hex(data), "size": len(data)} for name, data in files.items()}
    return document


def _files(kind: str, base: ModelArtifact, marker: Path) -> dict[str, bytes]:
    if kind == "pickle_payload":  # a pre-skops version whose pickle runs a command
        return {PICKLE_FILE: pickle.dumps(Payload(marker))}
    if kind == "untrusted_skops":  # a well-formed skops file naming a type nobody trusted
        pipeline = base.pipeline
        return {MODEL_FILE: sio.dumps({"steps": pipeline.steps, "trap": Trap(str(marker))})}
    if kind == "not_a_pipeline":  # only trusted types, but not a model: must not crash a retrain
        return {MODEL_FILE: sio.dumps(StandardScaler().fit(np.arange(10.0).reshape(5, 2)))}
    if kind == "junk_onnx":  # ONNX Runtime's parser fails on it with its own exception type
        return {ONNX_FILE: os.urandom(4096)}
    return dict(base.files)


def plant(store: ModelStore, base: ModelArtifact, kind: str, marker: Path) -> str:
    """Write a hostile version of ``kind`` next to the real ones; returns its id (not promoted)."""
    version = store.new_version_id()
    files = _files(kind, base, marker)
    manifest = _manifest(base, version, files)
    if kind == "path_traversal":  # a "file" outside the store, with its true checksum
        outside = Path(marker).with_name("outside.txt")
        outside.write_bytes(b"secret outside the store\n")
        manifest["files"] = {"../../../outside.txt": {"sha256": sha256_hex(outside.read_bytes()), "size": 25}}
        store._write_new(f"versions/{version}/{MANIFEST_FILE}", json.dumps(manifest).encode())
        return version
    if kind == "oversized":  # a manifest that claims a 1 TiB model: nothing may be read
        manifest["files"][MODEL_FILE]["size"] = 1 << 40
    _write(store, version, files, manifest)
    if kind in LOCAL_ONLY:
        if not isinstance(store, LocalModelStore):
            raise ValueError(f"{kind} needs a filesystem store")
        target = store.root / "versions" / version / MODEL_FILE
        target.unlink()
        if kind == "fifo":  # opening it for reading would block forever
            os.mkfifo(target)
        else:  # a link to an endless stream of zeros
            target.symlink_to("/dev/zero")
    return version


def point_champion(store: ModelStore, version: str) -> None:
    """Move ``champion`` to ``version`` by writing the alias object itself, as an attacker would
    (``promote`` refuses a version whose manifest it cannot read)."""
    key = "aliases/champion.json"
    current = store.alias("champion")
    previous = [*current.previous, current.version] if current else []
    body = {"alias": "champion", "version": version, "previous": previous, "updated_at": "2026-01-01T00:00:00+00:00"}
    store._swap(key, json.dumps(body).encode(), store.alias_token("champion"))
