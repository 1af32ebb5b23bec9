"""ccml's benchmark suite: every figure of issue 5 in one run, ratios measured side by side.

    python -m bench.run --quick           # CI smoke: about a minute and a half, indicative figures
    python -m bench.run --full            # the numbers: about 8 minutes on 2 cores
    python -m bench.run --quick --out DIR --sections in_process http

Sections: in_process (one-row latency, 100k-row batch), http (wrk against the floor and the
tutorial app, then /predict/batch), cold_start, training (10k/100k/1M rows through the
retraining workflow), model_size (full mode only: needs the shared engagement data).
Each figure is printed as it is measured; the run writes ``<UTC timestamp>.json`` and
``<UTC timestamp>.md`` into ``--out`` (default ``bench/results``). Every server is started
and stopped here, on free loopback ports; wrk (Debian package) drives the HTTP load.

A section that fails is recorded with its error, the others still run, and the exit status
is 1. The machine's load average is recorded at the start and end: on a shared machine,
compare ratios measured in one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cold_start, http_load, inprocess, model_size, training
from bench.common import RESULTS, ROOT, load_average
from bench.report import Mode, Plan, Report

SECTIONS = ("in_process", "http", "cold_start", "training", "model_size")
MODEL_ROWS = 9_000
LIBRARIES = ("scikit-learn", "onnxruntime", "skl2onnx", "numpy", "pandas", "fastapi", "uvicorn", "uvloop", "httptools")


@dataclasses.dataclass(frozen=True)
class Model:
    home: Path
    version: str
    joblib_path: Path
    record: dict[str, Any]


def train_model(workdir: Path) -> Model:
    """The model every serving section uses: the retraining workflow with ccml's defaults
    on 9,000 synthetic rows (about the size of the engagement data), promoted in a fresh store."""
    import joblib

    from ccml.core.artifact import MODEL_FILE
    from ccml.core.components import build_model_store, build_trainer
    from ccml.core.model_files import ONNX_FILE
    from ccml.core.settings import Settings
    from ccml.models.training.synthetic import generate
    from ccml.models.training.workflow import RetrainWorkflow
    from ccml.storage.local import LocalDataSource

    settings = Settings(home=workdir / "home")
    schema = settings.feature_schema()
    csv = workdir / "model-data.csv"
    generate(schema, MODEL_ROWS, seed=7).to_csv(csv, index=False)
    store = build_model_store(settings)
    outcome = RetrainWorkflow.from_settings(settings, store, build_trainer(settings)).run(LocalDataSource(csv))
    if not outcome.promoted or ONNX_FILE not in outcome.manifest.files:
        raise RuntimeError(f"the benchmark model was not promoted with an ONNX file: {outcome.manifest.notes}")
    if not (settings.models_root / "versions" / outcome.version / MODEL_FILE).exists():
        raise RuntimeError(f"the store layout changed: {MODEL_FILE} of {outcome.version} is missing")
    # The tutorial-style contender loads a joblib pickle, as such apps do: the benchmark writes
    # one itself from the version's pipeline (ccml stores skops and never unpickles).
    joblib_path = workdir / "tutorial-model.joblib"
    joblib.dump(store.load(outcome.version).pipeline, joblib_path, compress=3)
    print(f"model {outcome.version}: {MODEL_ROWS:,} synthetic rows, stages {outcome.seconds}", flush=True)
    return Model(settings.home, outcome.version, joblib_path, dict(schema.example_record()))


def _cpu() -> str:
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    except OSError:
        match = None
    return match.group(1).strip() if match else platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    except OSError:
        return None
    return round(int(match.group(1)) / 1024**2, 1) if match else None


def _command(*command: str) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout or result.stderr).strip()


def _blas() -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    keep = ("internal_api", "version", "num_threads", "architecture")
    return [{key: pool.get(key) for key in keep} for pool in threadpool_info()]


def metadata(mode: Mode, plan: Plan) -> dict[str, Any]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    dirty = _command("git", "status", "--porcelain", "--", "ccml", "handlers", "bench")
    wrk = _command("wrk", "--version").splitlines()
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "plan": dataclasses.asdict(plan),
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "libraries": versions,
        "wrk": wrk[0] if wrk else "absent",
        "commit": _command("git", "rev-parse", "--short", "HEAD") + (" with uncommitted changes" if dirty else ""),
        "load_average_start": load_average(),
        # Set on some processors for old OpenBLAS builds; they slow a current numpy.
        "openblas_env": {name: os.environ.get(name) for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "blas": _blas(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_mutually_exclusive_group(required=True)
    modes.add_argument("--quick", action="store_true", help="CI smoke: short cells, 10k-row training only.")
    modes.add_argument("--full", action="store_true", help="The numbers: longer cells, two rounds, 1M rows.")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Folder for the JSON and markdown results.")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--engagement-csv", type=Path, default=model_size.DEFAULT_DATA)
    args = parser.parse_args(argv)
    mode: Mode = "full" if args.full else "quick"
    plan = Plan.for_mode(mode)
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = Report(mode, meta=metadata(mode, plan))
    from ccml.core.logging import configure_logging

    configure_logging("warning", "console")  # ccml's info lines would bury the figures
    _standing_notes(report, mode)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ccml-bench-") as folder:
        workdir = Path(folder)
        model: Model | None = None

        def needs_model() -> Model:
            nonlocal model
            if model is None:
                model = train_model(workdir)
            return model

        steps: dict[str, Callable[[], Any]] = {
            "in_process": lambda: inprocess.run(report, plan, needs_model().home, needs_model().version),
            "http": lambda: http_load.run(
                report, plan, needs_model().home, needs_model().joblib_path, workdir, needs_model().record
            ),
            "cold_start": lambda: cold_start.run(report, plan, needs_model().home, workdir, needs_model().record),
            "training": lambda: training.run(report, plan, workdir),
            "model_size": lambda: (
                model_size.run(report, args.engagement_csv) if plan.model_size else {"skipped": "full mode only"}
            ),
        }
        timings: dict[str, float] = {}
        for name in SECTIONS:
            if name not in args.sections:
                continue
            print(f"\n== {name} (load average {load_average()})", flush=True)
            section_started = time.perf_counter()
            try:
                result = steps[name]()
            except Exception as exc:  # record it, run the other sections, exit 1 at the end
                traceback.print_exc()
                result = {"error": f"{type(exc).__name__}: {str(exc)[:2000]}"}
                failed += 1
            timings[name] = round(time.perf_counter() - section_started, 1)
            if name == "http":  # one set of servers, two sections: a failure belongs to both
                report.sections["http"], report.sections["http_batch"] = (
                    (result, result) if "error" in result else result
                )
            else:
                report.sections[name] = result
            if isinstance(result, dict) and "skipped" in result:
                print(f"skipped: {result['skipped']}", flush=True)
    _image_sizes(report)
    report.meta["section_seconds"] = timings
    report.meta["load_average_end"] = load_average()
    report.meta["total_seconds"] = round(time.perf_counter() - started, 1)
    json_path, markdown_path = report.write(args.out, stamp)
    print(f"\n{report.markdown()}\nwrote {json_path} and {markdown_path} in {report.meta['total_seconds']} s")
    return 1 if failed else 0


def _image_sizes(report: Report) -> None:
    """The image sizes of the latest ``make image-test`` (podman builds take minutes: the
    suite reads them rather than building), with the time of that run."""
    runs = sorted(RESULTS.glob("image-test-*.json"))
    if not runs:
        report.note("no image-test result in bench/results: run `make image-test` for the image sizes")
        return
    latest = json.loads(runs[-1].read_text())
    when = runs[-1].stem.removeprefix("image-test-")
    sizes = latest["size_bytes"]
    report.add(
        "images",
        "api_image_mb",
        f"api image (serving set only) as podman reports it, base {latest['base_image']} included; "
        f"`make image-test` of {when}",
        sizes["api"] / 1e6,
        "MB",
        target="<= 250 MB (issue 15)",
        met=sizes["api"] / 1e6 <= 250,
    )
    report.add(
        "images", "lambda_image_mb", f"lambda image (training set), same run ({when})", sizes["lambda"] / 1e6, "MB"
    )
    if "api_ready_seconds" in latest:
        report.add(
            "images",
            "api_container_ready_s",
            f"api container: podman run to /ready answering, same run ({when})",
            latest["api_ready_seconds"],
            "s",
        )


def _standing_notes(report: Report, mode: Mode) -> None:
    report.note(
        "wrk runs on the same 2 cores as the servers (wrk threads = min(connections, 2)): it takes CPU from "
        "every contender alike, so the ratios hold, but absolute req/s are below what a separate client "
        "machine would see, most of all for the 2-worker server, whose workers compete with wrk for both cores."
    )
    report.note(
        "ccml serve runs with CCML_LOG_LEVEL=warning (no per-request log line, as the floor and tutorial apps "
        "run with uvicorn's access log off) and CCML_MAX_BODY_BYTES=32 MiB (the 1 MiB default refuses a "
        "10,000-instance batch)."
    )
    if mode == "quick":
        report.note(
            "quick mode: 300 one-row calls per backend (full: 2,000), 2 s wrk cells (full: 12 s, two rounds), "
            "one cold start of each kind (full: 5), 10k-row training only, no model-size section: its figures "
            "are indicative, not the numbers to quote."
        )
    blas = {name: value for name, value in report.meta["openblas_env"].items() if value}
    if blas:
        report.note(f"OpenBLAS variables set in this environment ({blas}): they slow a current numpy.")


if __name__ == "__main__":
    sys.exit(main())
