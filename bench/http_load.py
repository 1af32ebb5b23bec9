"""Sections 2 and 3, over HTTP on loopback: ``POST /predict`` under wrk against the floor and
the tutorial-style app, then ``POST /predict/batch`` throughput.

All four servers (floor, ccml with 1 worker, ccml with 2 workers, tutorial) run at once on
free loopback ports, so each connection count measures them back to back, in turn; in full
mode a second round runs them in reverse order and the better round is reported. wrk runs
on the same two cores as the servers: it takes CPU from every contender alike, so the ratios
hold, but the absolute req/s are lower than with a client on another machine.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    bin_path,
    child_env,
    free_port,
    log_tail,
    median,
    post_json,
    run_wrk,
    servers,
    wait_ready,
    write_post_script,
    wrk_available,
)
from bench.report import Plan, Report

SECTION = "http"
BATCH_SECTION = "http_batch"
# ccml refuses bodies over CCML_MAX_BODY_BYTES (1 MiB by default); 10,000 instances are ~1.5 MB.
BATCH_BODY_LIMIT = 32 * 1024 * 1024
UVICORN_FLAGS = ["--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    command: list[str]
    env: dict[str, str]
    port: int


def contenders(home: Path, model_path: Path) -> list[Contender]:
    """The four servers, each on its own free port. ccml logs at warning: its one line per
    request at info would be an access log, which the other two apps have turned off."""
    ccml_env = child_env(
        CCML_HOME=str(home),
        CCML_PREDICTOR="onnx",
        CCML_LOG_LEVEL="warning",
        CCML_MAX_BODY_BYTES=str(BATCH_BODY_LIMIT),
    )
    result = []
    for name, label, app, env in (
        ("floor", "floor app (FastAPI, constant answer, no model)", "bench.floor_app:app", child_env()),
        (
            "validating",
            "validating floor (FastAPI validates the same body, constant answer, no model)",
            "bench.validating_floor_app:app",
            child_env(),
        ),
        (
            "tutorial",
            "tutorial app (pandas DataFrame + sklearn Pipeline per request)",
            "bench.tutorial_app:app",
            child_env(BENCH_MODEL_PATH=str(model_path)),
        ),
    ):
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *UVICORN_FLAGS]
        result.append(Contender(name, label, [*command, "--log-level", "warning"], env, port))
    for workers in (1, 2):
        port = free_port()
        command = [bin_path("ccml"), "serve", "--port", str(port), "--workers", str(workers)]
        label = f"ccml serve, {workers} worker{'s' if workers > 1 else ''}, onnx"
        result.append(Contender(f"ccml_{workers}w", label, command, ccml_env, port))
    order = {"floor": 0, "validating": 1, "ccml_1w": 2, "ccml_2w": 3, "tutorial": 4}
    return sorted(result, key=lambda c: order[c.name])


def run(
    report: Report, plan: Plan, home: Path, model_path: Path, workdir: Path, record: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start every server, run the wrk cells (when wrk is installed) and the batch benchmark."""
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    body = json.dumps(record)
    script = write_post_script(workdir / "post.lua", body)
    lineup = contenders(home, model_path)
    started = time.perf_counter()
    with servers({c.name: c.command for c in lineup}, {c.name: c.env for c in lineup}, workdir, logs) as running:
        for contender in lineup:
            url = f"http://127.0.0.1:{contender.port}"
            try:
                wait_ready(url, deadline_s=120, process=running[contender.name])
                status, answer = post_json(contender.port, "/predict", body.encode())
            except (RuntimeError, OSError) as exc:
                raise RuntimeError(f"{contender.name}: {exc}\n{log_tail(logs, contender.name)}") from exc
            if status != 200:
                raise RuntimeError(f"{contender.name} answered {status} to the example record: {answer[:300]!r}")
        print(f"  {len(lineup)} servers ready in {time.perf_counter() - started:.1f} s", flush=True)
        if wrk_available():
            load = _load(report, plan, lineup, script)
        else:
            load = {"skipped": "wrk is not installed (apt-get install -y wrk)"}
            report.note("wrk is not installed: the /predict load section was skipped")
        ccml_1w = next(c for c in lineup if c.name == "ccml_1w")
        batch = _batch(report, plan, ccml_1w.port, record)
        batch["worker_memory_mb"] = _worker_memory(report, running["ccml_1w"].pid)
    return load, batch


def _worker_memory(report: Report, pid: int) -> dict[str, float]:
    """Resident memory of the 1-worker ccml serve (with one worker, uvicorn serves in the process
    ``ccml serve`` started) after the wrk cells and the batch benchmark: warmed up."""
    status = Path(f"/proc/{pid}/status").read_text()
    memory = {
        field: int(line.split()[1]) / 1024
        for line in status.splitlines()
        for field in ("VmRSS", "VmHWM")
        if line.startswith(f"{field}:")
    }
    report.add(
        BATCH_SECTION,
        "ccml_1w_worker_rss_mb",
        "resident memory of the ccml serve worker (1 worker, onnx) after the /predict cells and the batches "
        f"(peak {memory['VmHWM']:.0f} MB: a 10,000-instance batch's body, records and answer)",
        memory["VmRSS"],
        "MB",
        target="<= 150 MB (issue 15)",
        met=memory["VmRSS"] <= 150,
    )
    return memory


def _load(report: Report, plan: Plan, lineup: list[Contender], script: Path) -> dict[str, Any]:
    # Warm-up: the first requests of ccml pay for lazy work, and the second worker of a
    # 2-worker server may still be loading its model (the other apps answered one request).
    for contender in (c for c in lineup if c.name.startswith("ccml")):
        run_wrk(f"http://127.0.0.1:{contender.port}/predict", 8, plan.wrk_warmup_seconds, script)
    cells: dict[str, dict[int, list[dict[str, Any]]]] = {c.name: {} for c in lineup}
    for connections in plan.connections:
        for round_number in range(plan.wrk_rounds):
            order = lineup if round_number % 2 == 0 else list(reversed(lineup))
            for contender in order:
                result = run_wrk(f"http://127.0.0.1:{contender.port}/predict", connections, plan.wrk_seconds, script)
                result["round"] = round_number + 1
                cells[contender.name].setdefault(connections, []).append(result)
                print(
                    f"  wrk {contender.name:9s} c={connections:<3d} round {round_number + 1}: "
                    f"{result['requests_per_s']:,.0f} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
                    f"errors {result['errors']}",
                    flush=True,
                )
    # The better round (higher req/s) of each cell, with that round's own latencies.
    best = {
        name: {c: max(rounds, key=lambda r: r["requests_per_s"]) for c, rounds in by_connections.items()}
        for name, by_connections in cells.items()
    }
    labels = {c.name: c.label for c in lineup}
    _figures(report, plan, best, labels)
    report.tables.append(_detail_table(plan, best, labels))
    return {
        "seconds_per_cell": plan.wrk_seconds,
        "rounds": plan.wrk_rounds,
        "wrk_threads": {c: min(c, 2) for c in plan.connections},
        "contenders": labels,
        "cells": {name: {str(c): rounds for c, rounds in by.items()} for name, by in cells.items()},
        "best": {name: {str(c): r for c, r in by.items()} for name, by in best.items()},
    }


def _figures(report: Report, plan: Plan, best: dict[str, dict[int, dict[str, Any]]], labels: dict[str, str]) -> None:
    how = f"wrk {plan.wrk_seconds} s per cell, best of {plan.wrk_rounds} round(s), POST /predict (example record)"
    for connections in plan.connections:
        floor = best["floor"][connections]
        tutorial = best["tutorial"][connections]
        ccml = best["ccml_1w"][connections]
        two = best["ccml_2w"][connections]
        at = f"{connections} connection{'s' if connections > 1 else ''}"
        for name, cell in (("floor", floor), ("tutorial", tutorial)):
            report.add(
                SECTION, f"{name}_rps_c{connections}", f"{labels[name]}, {at}; {how}", cell["requests_per_s"], "req/s"
            )
        validating = best["validating"][connections]
        report.add(
            SECTION, f"validating_rps_c{connections}", f"{labels['validating']}, {at}; {how}",
            validating["requests_per_s"], "req/s",
        )  # fmt: skip
        report.add(
            SECTION,
            f"ccml_1w_rps_c{connections}_vs_validating",
            f"{labels['ccml_1w']}, {at} (same cell as below)",
            ccml["requests_per_s"],
            "req/s",
            compared_to=f"validating floor req/s at {at}",
            ratio=_ratio(ccml["requests_per_s"], validating["requests_per_s"]),
            target=">= 1.0x validating floor (issue 15)",
            met=_ratio(ccml["requests_per_s"], validating["requests_per_s"]) >= 1.0,
        )
        report.add(
            SECTION,
            f"ccml_1w_rps_c{connections}_vs_floor",
            f"{labels['ccml_1w']}, {at}; {how}",
            ccml["requests_per_s"],
            "req/s",
            compared_to=f"floor app req/s at {at}",
            ratio=_ratio(ccml["requests_per_s"], floor["requests_per_s"]),
            target=">= 0.85x floor",
            met=_ratio(ccml["requests_per_s"], floor["requests_per_s"]) >= 0.85,
        )
        report.add(
            SECTION,
            f"ccml_1w_rps_c{connections}_vs_tutorial",
            f"{labels['ccml_1w']}, {at} (same cell as above)",
            ccml["requests_per_s"],
            "req/s",
            compared_to=f"tutorial app req/s at {at}",
            ratio=_ratio(ccml["requests_per_s"], tutorial["requests_per_s"]),
            target=">= 30x tutorial",
            met=_ratio(ccml["requests_per_s"], tutorial["requests_per_s"]) >= 30,
        )
        report.add(
            SECTION,
            f"ccml_2w_rps_c{connections}",
            f"{labels['ccml_2w']}, {at}; {how}",
            two["requests_per_s"],
            "req/s",
            compared_to=f"floor app (1 worker) req/s at {at}",
            ratio=_ratio(two["requests_per_s"], floor["requests_per_s"]),
        )
    if 32 in plan.connections:
        ccml_p99, floor_p99 = best["ccml_1w"][32]["p99_ms"], best["floor"][32]["p99_ms"]
        report.add(
            SECTION,
            "ccml_1w_p99_ms_c32",
            f"p99 latency, {labels['ccml_1w']}, 32 connections; {how}",
            ccml_p99,
            "ms",
            compared_to=f"floor app p99 at 32 connections ({floor_p99} ms)",
            ratio=_ratio(ccml_p99, floor_p99),
            target="<= 1.5x floor",
            met=_ratio(ccml_p99, floor_p99) <= 1.5,
        )
    if 1 in plan.connections:
        p50 = best["ccml_2w"][1]["p50_ms"]
        report.add(
            SECTION,
            "ccml_2w_p50_ms_c1",
            f"p50 latency, {labels['ccml_2w']}, 1 connection (a ~40 ms Nagle/delayed-ACK stall would show here)",
            p50,
            "ms",
            target="< 1 ms",
            met=p50 < 1.0,
        )
    errors = {name: sum(cell["errors"] for cell in by.values()) for name, by in best.items()}
    report.add(
        SECTION,
        "errors_total",
        "non-2xx answers + socket errors (connect, read, write, timeout) in the reported cells, all contenders "
        f"({', '.join(f'{name} {count}' for name, count in errors.items())})",
        sum(errors.values()),
        "errors",
    )


def _detail_table(plan: Plan, best: dict[str, dict[int, dict[str, Any]]], labels: dict[str, str]) -> dict[str, Any]:
    rows = []
    for connections in plan.connections:
        floor = best["floor"][connections]["requests_per_s"]
        for name, by in best.items():
            cell = by[connections]
            rows.append(
                [
                    labels[name],
                    str(connections),
                    f"{cell['requests_per_s']:,.0f}",
                    str(cell["p50_ms"]),
                    str(cell["p99_ms"]),
                    str(cell["errors"]),
                    f"{cell['requests']:,}",
                    f"{_ratio(cell['requests_per_s'], floor):.2f}x",
                ]
            )
    return {
        "title": (
            f"POST /predict under wrk (loopback, {plan.wrk_seconds} s per cell, wrk threads = min(connections, 2), "
            f"best of {plan.wrk_rounds} round(s))"
        ),
        "header": ["server", "connections", "req/s", "p50 ms", "p99 ms", "errors", "requests", "req/s vs floor"],
        "rows": rows,
    }


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference else math.nan


def sample_records(schema: Any, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` varied, complete records in the API's field names (synthetic students)."""
    from ccml.models.training.synthetic import generate

    frame = generate(schema, count * 2, seed=seed)
    casts = {"integer": int, "numeric": float, "boolean": bool}
    records = []
    for row in frame.to_dict("records"):
        values = [row[f.column] for f in schema.features]
        if any(v is None for v in values):
            continue
        records.append(
            {f.name: casts.get(f.type, lambda v: v)(v) for f, v in zip(schema.features, values, strict=True)}
        )
        if len(records) == count:
            return records
    raise RuntimeError(f"could not draw {count} complete synthetic records")


def _batch(report: Report, plan: Plan, port: int, record: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from ccml.core.schema import load_schema

    schema = load_schema()
    bodies = {
        size: json.dumps({"instances": sample_records(schema, size, seed=size)}).encode()
        for size in plan.http_batch_sizes
    }
    seconds: dict[int, list[float]] = {size: [] for size in bodies}
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        for body in bodies.values():  # warm-up, untimed
            client.post("/predict/batch", content=body, headers=headers).raise_for_status()
        for _ in range(plan.http_batch_reps):
            for size, body in bodies.items():
                started = time.perf_counter()
                response = client.post("/predict/batch", content=body, headers=headers)
                answers = response.json()
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or len(answers["predictions"]) != size:
                    raise RuntimeError(f"/predict/batch with {size} instances answered {response.status_code}")
                seconds[size].append(elapsed)
    rates = {}
    for size, values in seconds.items():
        rates[size] = size / median(values)
        report.add(
            BATCH_SECTION,
            f"batch_{size}_rows_per_s",
            f"POST /predict/batch with {size:,} varied instances, ccml serve 1 worker (onnx), one client, "
            f"request sent to answer parsed, median of {plan.http_batch_reps} (median {median(values) * 1000:,.0f} ms)",
            rates[size],
            "rows/s",
            target=">= 250,000 rows/s (issue 15)",
            met=rates[size] >= 250_000,
        )
    return {
        "body_bytes": {str(size): len(body) for size, body in bodies.items()},
        "seconds": {str(size): values for size, values in seconds.items()},
        "rows_per_s": {str(size): rate for size, rate in rates.items()},
        "max_body_bytes": BATCH_BODY_LIMIT,
    }
