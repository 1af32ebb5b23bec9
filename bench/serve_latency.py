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
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import RESULTS, bin_path, free_port, run_wrk, wait_ready, write_post_script, wrk_available
from ccml.core.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not wrk_available():
        sys.exit("wrk is not installed: apt-get install -y wrk")
    record = json.dumps(Settings().feature_schema().example_record())
    ccml = bin_path("ccml")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        script = write_post_script(Path(folder) / "post.lua", record)
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
