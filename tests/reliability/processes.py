"""Real ``ccml`` processes for the reliability suite: a clean environment, a server that is
not waited on (so a test can watch one that must stay up without being ready)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import CCML_SCRIPT, ServerProcess, free_port


def environment(home: Path, extra: dict[str, str]) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("CCML_")}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment.update(
        {"CCML_HOME": str(home), "CCML_LOG_FORMAT": "json", "CCML_RELOAD_INTERVAL_S": "0.2", "CCML_MIN_ROWS": "50"}
    )
    environment.update(extra)
    return environment


def serve(home: Path, log_dir: Path, env: dict[str, str]) -> ServerProcess:
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    command = [str(CCML_SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            env=environment(home, env),
            cwd=log_dir,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ServerProcess(process, f"http://127.0.0.1:{port}", log)


def wait_alive(server: ServerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"ccml serve exited with {server.process.returncode}:\n{server.logs()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"ccml serve did not answer /health within {timeout} s:\n{server.logs()[-3000:]}")
