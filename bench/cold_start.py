"""Section 4, cold start: process start to the first answer, each in a fresh process.

- API: ``ccml serve`` (1 worker, onnx) is spawned and ``POST /predict`` is polled until it
  answers 200; the clock runs from just before ``Popen`` (interpreter start, imports, model
  load, socket bind, first request all included).
- Lambda handler: a process imports ``handlers.retrain`` and builds its components
  (``_retrainer()``, local store); a real invocation also needs an S3 event and training,
  which are not start-up costs.
- ``import ccml.api.app`` alone, next to an empty interpreter start for scale.
- Whether serving an onnx model imports scikit-learn (it should not: ~0.7 s of imports).

Repetitions after the first find the files in the page cache, like a restarted container
on the same host; the first repetition is reported too.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import bin_path, child_env, free_port, last_json_line, median, post_json, stop
from bench.report import Plan, Report

SECTION = "cold_start"
DEADLINE_S = 90.0


def _first_line_s(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Seconds from just before Popen to the child's first line on stdout (its result, or
    the marker it prints once the measured work is done); the exit is not waited for."""
    # stderr to a file, not a pipe: a chatty child must not block on a full pipe while we
    # wait for its stdout.
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert process.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                if not selector.select(timeout=DEADLINE_S):
                    raise TimeoutError(f"{command!r} printed nothing within {DEADLINE_S} s")
                line = process.stdout.readline()
            elapsed = time.perf_counter() - started
            process.stdout.read()
            status = process.wait(timeout=DEADLINE_S)
        finally:
            stop(process, grace_s=5)
            if process.stdout is not None:
                process.stdout.close()
        if status != 0 or not line.strip():
            errors.seek(0)
            raise RuntimeError(f"{command!r} failed ({status}): {errors.read()[-2000:].decode(errors='replace')}")
    return elapsed, line


def _api_first_prediction_s(home: Path, cwd: Path, body: bytes) -> float:
    port = free_port()
    env = child_env(CCML_HOME=str(home), CCML_PREDICTOR="onnx", CCML_LOG_LEVEL="warning")
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [bin_path("ccml"), "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            while time.perf_counter() < started + DEADLINE_S:
                if process.poll() is not None:
                    log.seek(0)
                    output = log.read()[-2000:].decode(errors="replace")
                    raise RuntimeError(f"ccml serve exited with {process.returncode} before answering: {output}")
                try:
                    status, _ = post_json(port, "/predict", body, timeout_s=5)
                except OSError:  # nothing listens yet
                    time.sleep(0.002)
                    continue
                if status == 200:
                    return time.perf_counter() - started
                time.sleep(0.002)
            raise TimeoutError(f"ccml serve gave no 200 within {DEADLINE_S} s")
        finally:
            stop(process)


def run(report: Report, plan: Plan, home: Path, workdir: Path, record: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(record).encode()
    python = sys.executable
    reps = plan.cold_start_reps
    results: dict[str, list[float]] = {"api": [], "handler": [], "app_import": [], "interpreter": []}
    handler_parts: list[dict[str, float]] = []
    handler_env = child_env(CCML_STORAGE="local", CCML_HOME=str(home), CCML_LOG_LEVEL="warning")
    for _ in range(reps):  # contenders alternate, so a busy moment hits them alike
        results["api"].append(_api_first_prediction_s(home, workdir, body))
        seconds, line = _first_line_s([python, "-m", "bench.children", "handler"], handler_env, workdir)
        results["handler"].append(seconds)
        handler_parts.append(json.loads(line))
        seconds, _ = _first_line_s([python, "-c", "import ccml.api.app; print('{}', flush=True)"], child_env(), workdir)
        results["app_import"].append(seconds)
        seconds, _ = _first_line_s([python, "-c", "print('{}', flush=True)"], child_env(), workdir)
        results["interpreter"].append(seconds)

    api = median(results["api"])
    report.add(
        SECTION,
        "api_first_prediction_s",
        f"`ccml serve` (1 worker, onnx): Popen to the first 200 answer of POST /predict, median of {reps} "
        f"(first run {results['api'][0]:.2f} s)",
        api,
        "s",
        target="<= 0.4 s (issue 15)",
        met=api <= 0.4,
    )
    import_s = median([part["import_s"] for part in handler_parts])
    build_s = median([part["build_s"] for part in handler_parts])
    report.add(
        SECTION,
        "handler_import_and_build_s",
        "Lambda handler module import and component build: Popen to `import handlers.retrain` + "
        f"`_retrainer()` done (CCML_STORAGE=local), median of {reps} "
        f"(in-process: import {import_s:.2f} s, build {build_s:.2f} s)",
        median(results["handler"]),
        "s",
        target="<= 1.5 s (issue 15)",
        met=median(results["handler"]) <= 1.5,
    )
    report.add(
        SECTION,
        "app_import_s",
        f'`python -c "import ccml.api.app"`: Popen to import done, median of {reps}',
        median(results["app_import"]),
        "s",
        compared_to="empty interpreter start (`python -c pass`)",
        ratio=median(results["app_import"]) / median(results["interpreter"]),
    )
    report.add(
        SECTION,
        "interpreter_start_s",
        f"`python -c pass` (this virtualenv's interpreter start), median of {reps}",
        median(results["interpreter"]),
        "s",
    )
    modules = last_json_line(
        subprocess.run(
            [python, "-m", "bench.children", "serving-modules", "--home", str(home)],
            env=child_env(),
            cwd=workdir,
            capture_output=True,
            text=True,
            check=True,
            timeout=DEADLINE_S,
        ).stdout
    )
    if modules["status"] != 200:
        raise RuntimeError(f"the serving-modules child got {modules['status']} from /predict")
    imported = modules["imported"]
    report.add(
        SECTION,
        "sklearn_imported_when_serving_onnx",
        "scikit-learn in sys.modules of a process that built create_app(predictor=onnx), ran its lifespan and "
        f"answered one /predict (pandas: {'yes' if imported['pandas'] else 'no'}, "
        f"scipy: {'yes' if imported['scipy'] else 'no'})",
        bool(imported["sklearn"]),
        "",
        target="no",
        met=not imported["sklearn"],
    )
    return {"reps": reps, "seconds": results, "handler_in_process": handler_parts, "serving_modules": modules}
