"""A child process that saves and promotes a version in a local store, SIGKILLed at one step.

``python save_worker.py SEED_ROOT SEED_VERSION STORE_ROOT STEP`` copies version ``SEED_VERSION``
of the store at ``SEED_ROOT`` into the store at ``STORE_ROOT`` (``save`` then ``promote``) and
kills itself with SIGKILL, which nothing can catch or clean up after, at the ``STEP`` named in
``KILL_POINTS``. It prints where it died (a key or a temporary file) just before, so the parent
can prove the kill point was reached; it prints ``finished`` if it never was.

It imports only ccml (not the test suite), and the hooks wrap the store's own primitive, so what
the parent finds on disk is exactly what a crash of a real save leaves.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Final, NoReturn

from ccml.storage.local import LocalModelStore

# step -> (the primitive it dies in, a pattern for the key (or the final file name of a
# temporary file)). "write" and "swap" die before the call; "temporary" dies once the
# temporary file is complete, before the link or rename that would make it visible.
KILL_POINTS: Final[dict[str, tuple[str, str]]] = {
    "before the model file": ("write", r"/model\.skops$"),
    "model file not yet linked": ("temporary", r"^model\.skops$"),
    "before the ONNX file": ("write", r"/model\.onnx$"),
    "before the manifest": ("write", r"/manifest\.json$"),
    "before the alias move": ("swap", r"^aliases/champion\.json$"),
    "alias not yet renamed": ("temporary", r"^champion\.json$"),
    "before the history line": ("write", r"^history/"),
}


def die(where: str) -> NoReturn:
    print(where, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    raise SystemExit(1)  # not reached: SIGKILL cannot be handled


def arm(step: str) -> None:
    hook, pattern = KILL_POINTS[step]
    matches = re.compile(pattern).search
    write_new, swap, temporary = LocalModelStore._write_new, LocalModelStore._swap, LocalModelStore._temporary

    def _write_new(self: LocalModelStore, key: str, data: bytes) -> None:
        if hook == "write" and matches(key):
            die(key)
        write_new(self, key, data)

    def _swap(self: LocalModelStore, key: str, data: bytes, expected: str | None) -> None:
        if hook == "swap" and matches(key):
            die(key)
        swap(self, key, data, expected)

    def _temporary(self: LocalModelStore, path: Path, data: bytes) -> Path:
        written = temporary(self, path, data)
        if hook == "temporary" and matches(path.name):
            die(str(written))
        return written

    LocalModelStore._write_new = _write_new  # type: ignore[method-assign]
    LocalModelStore._swap = _swap  # type: ignore[method-assign]
    LocalModelStore._temporary = _temporary  # type: ignore[method-assign]


def killed_save(seed_root: Path, seed_version: str, root: Path, step: str) -> str:
    """Run this worker (from the test process) until it SIGKILLs itself at ``step``; returns where."""
    done = subprocess.run(
        [sys.executable, __file__, str(seed_root), seed_version, str(root), step],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stdout, done.stderr[-2000:])
    return done.stdout.strip().splitlines()[-1]


def main(argv: list[str]) -> int:
    seed_root, seed_version, root, step = argv
    artifact = LocalModelStore(Path(seed_root)).load(seed_version)
    store = LocalModelStore(Path(root))
    arm(step)
    version = store.save(artifact).id
    store.promote(version, reason="saved by the worker")
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
