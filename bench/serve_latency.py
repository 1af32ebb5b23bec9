"""HTTP latency of ``ccml serve`` under wrk, for 1 and 2 workers at several connection counts.

Starts real server processes on free loopback ports against an existing model store (the
``CCML_*`` environment, e.g. ``CCML_HOME``), drives ``POST /predict`` (and ``GET /health``,
which runs no model) with wrk for a bounded time per cell, and prints req/s, p50 and p99.
wrk must be installed (Debian package ``wrk``).

    python -m bench.serve_latency [--seconds 10] [--connections 1 8] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccml.core.settings import Settings

RESULTS = Path(__file__).parent / "results"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready within {deadline_s} s")


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return round(float(match.group(1)) * _UNITS[match.group(2)], 3)


def run_wrk(url: str, connections: int, seconds: int, script: Path | None) -> dict[str, Any]:
    command = ["wrk", "--latency", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)$", output, re.MULTILINE)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    record = json.dumps(Settings().feature_schema().example_record())
    ccml = str(Path(sys.executable).parent / "ccml")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(record)}\n'
        )
        for workers in args.workers:
            port = free_port()
            env = {**os.environ, "CCML_LOG_LEVEL": "warning"}
            server = subprocess.Popen(
                [ccml, "serve", "--port", str(port), "--workers", str(workers)], env=env, stderr=subprocess.DEVNULL
            )
            try:
                base = f"http://127.0.0.1:{port}"
                wait_ready(base)
                for connections in args.connections:
                    for route, lua in (("/predict", script), ("/health", None)):
                        result = run_wrk(base + route, connections, args.seconds, lua)
                        row = {"route": route, "workers": workers, "connections": connections, **result}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
            finally:
                server.terminate()
                server.wait(timeout=30)
    report = {
        "benchmark": "serve_latency",
        "what": "wrk against ccml serve on loopback; /health runs no model; POST /predict scores the example record",
        "seconds_per_cell": args.seconds,
        "rows": rows,
        "at": datetime.now(UTC).isoformat(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"serve_latency-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
