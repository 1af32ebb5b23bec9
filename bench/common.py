"""Helpers shared by the benchmarks: ports, server processes, wrk, child processes, statistics.

Nothing here imports ccml, scikit-learn or pandas at module level: ``bench.children`` times
imports in fresh processes and must not pay for them before it starts its clock.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
LOOPBACK = "127.0.0.1"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


# -- ports and servers ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_ready(
    url: str, deadline_s: float = 60.0, path: str = "/ready", process: subprocess.Popen[Any] | None = None
) -> None:
    """Poll ``url + path`` until it answers 200; fail early if ``process`` has exited."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with status {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url + path, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not become ready within {deadline_s} s")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: this one minus every ``CCML_*`` variable (a
    developer's shell must not change what is measured), with ``bench`` importable."""
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("CCML_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def bin_path(name: str) -> str:
    """A console script of the interpreter running the benchmark (the project's virtualenv)."""
    return str(Path(sys.executable).parent / name)


def stop(process: subprocess.Popen[Any], grace_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``: uvicorn shuts down gracefully on SIGTERM."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    reap(process, grace_s)


def reap(process: subprocess.Popen[Any], grace_s: float = 15.0) -> None:
    """Wait for a signalled process; SIGKILL it if it outlives ``grace_s``."""
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)


@contextlib.contextmanager
def servers(
    commands: Mapping[str, Sequence[str]], envs: Mapping[str, Mapping[str, str]], cwd: Path, log_dir: Path
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Start one process per named command, output to ``log_dir/<name>.log``; on exit signal
    them all before waiting for any, so their graceful shutdowns overlap."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            with (log_dir / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
                processes[name] = subprocess.Popen(
                    list(command),
                    env=dict(envs[name]),
                    cwd=cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            reap(process)  # not stop(): a second SIGTERM makes uvicorn skip its graceful shutdown


def log_tail(log_dir: Path, name: str, chars: int = 2000) -> str:
    path = log_dir / f"{name}.log"
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def post_json(port: int, path: str, body: bytes, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """One POST over a fresh loopback connection; raises OSError when nothing listens yet."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout_s)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# -- wrk -----------------------------------------------------------------------------------


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def write_post_script(path: Path, body: str) -> Path:
    """A wrk Lua script that POSTs ``body`` as JSON (a long-bracket string: no escaping)."""
    if "]==]" in body:
        raise ValueError("the body must not contain the Lua long-bracket terminator")
    path.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{body}]==]\n'
    )
    return path


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return round(float(match.group(1)) * _UNITS[match.group(2)], 3)


def parse_wrk(output: str) -> dict[str, Any]:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)$", output, re.MULTILINE)
    socket_total = sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1))) if socket_errors else 0
    non_2xx_count = int(non_2xx.group(1)) if non_2xx else 0
    return {
        "requests_per_s": float(rate.group(1)),
        "requests": int(total.group(1)),
        # wrk prints no percentiles when no request completed
        "p50_ms": _ms(percentiles["50"]) if "50" in percentiles else math.nan,
        "p99_ms": _ms(percentiles["99"]) if "99" in percentiles else math.nan,
        "errors": non_2xx_count + socket_total,
        "non_2xx": non_2xx_count,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def run_wrk(url: str, connections: int, seconds: int, script: Path | None, *, timeout_s: float = 5.0) -> dict[str, Any]:
    """wrk for ``seconds`` (its own clock bounds the loop); one thread per connection up to
    two, since the machine has two cores and wrk shares them with the server."""
    command = [
        "wrk",
        "--latency",
        f"-t{min(connections, 2)}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={max(1, round(timeout_s))}s",
    ]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    return parse_wrk(output)


# -- child processes -----------------------------------------------------------------------


def last_json_line(text: str) -> dict[str, Any]:
    """The last line of ``text`` that is a JSON object (children print their result last)."""
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            document: dict[str, Any] = json.loads(line)
            return document
    raise RuntimeError(f"no JSON result in the child's output:\n{text[-2000:]}")


# -- statistics ----------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on the sorted samples."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples)) if samples else math.nan


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
