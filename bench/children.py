"""Work that ``bench.run`` measures in a fresh process: each prints one JSON line last.

    python -m bench.children handler                  # import handlers.retrain, build its components
    python -m bench.children serving-modules --home H # which heavy modules serving an onnx model imports
    python -m bench.children train --csv F --home H   # one retraining run: seconds and peak RSS per stage

Imports of ccml happen inside the functions, after the clock starts: this module imports
only the standard library at the top.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_mb(field: str) -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    return round(int(match.group(1)) / 1024, 1) if match else float("nan")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0), so the
    next reading is the peak of one stage rather than of the whole process so far."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def handler() -> dict[str, Any]:
    started = time.perf_counter()
    import handlers.retrain

    imported = time.perf_counter()
    handlers.retrain._retrainer()
    built = time.perf_counter()
    return {"import_s": imported - started, "build_s": built - imported}


def serving_modules(home: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from ccml.api.app import create_app
    from ccml.core.schema import load_schema
    from ccml.core.settings import Settings

    # TestClient itself imports none of these; record what was there before the app.
    before = {name: name in sys.modules for name in ("sklearn", "pandas", "scipy")}
    app = create_app(Settings(predictor="onnx", home=home, log_level="warning"))
    with TestClient(app) as client:
        response = client.post("/predict", json=load_schema().example_record())
    return {
        "status": response.status_code,
        "imported_before_app": before,
        "imported": {name: name in sys.modules for name in ("sklearn", "pandas", "scipy", "onnxruntime")},
    }


def train(csv: Path, home: Path) -> dict[str, Any]:
    import logging

    import structlog

    peaks: dict[str, float] = {}
    before_stages: list[float] = []
    resettable = True

    def stage_hook(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        # The workflow logs stage_started / stage_finished around each stage: the only hook
        # into its stages without changing ccml. Every event is dropped after this.
        nonlocal resettable
        if event.get("event") == "stage_started":
            if not before_stages:  # the peak of start-up and imports, before the first reset
                before_stages.append(_status_mb("VmHWM"))
            resettable = _reset_peak() and resettable
        elif event.get("event") == "stage_finished":
            peaks[str(event["stage"])] = _status_mb("VmHWM")
        raise structlog.DropEvent

    structlog.configure(
        processors=[stage_hook],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    started = time.perf_counter()
    from ccml.core.components import build_model_store, build_trainer
    from ccml.core.settings import Settings
    from ccml.models.training.workflow import RetrainWorkflow
    from ccml.storage.local import LocalDataSource

    settings = Settings.load(home=home)  # every other setting at its default
    imported = time.perf_counter()
    store = build_model_store(settings)
    workflow = RetrainWorkflow.from_settings(settings, store, build_trainer(settings))
    outcome = workflow.run(LocalDataSource(csv))
    # The process's own peak, from VmHWM readings. Not ru_maxrss: Linux carries the peak RSS
    # of the forking parent (the benchmark runner, hundreds of MB) into the child's across exec.
    peak = max([*before_stages, *peaks.values(), _status_mb("VmHWM")])
    return {
        "import_s": imported - started,
        "workflow_s": time.perf_counter() - imported,
        "seconds": outcome.seconds,
        "stage_peak_rss_mb": peaks,
        "per_stage_peaks": resettable,  # False: each figure is the running peak so far
        "peak_rss_mb": peak,
        "rss_peak_before_stages_mb": before_stages[0] if before_stages else None,
        "rows_used": outcome.manifest.data.rows_used,
        "onnx": outcome.manifest.notes.get("onnx", ""),
        "version": outcome.version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("task", choices=["handler", "serving-modules", "train"])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    if args.task == "handler":
        result = handler()
    elif args.task == "serving-modules":
        result = serving_modules(args.home)
    else:
        result = train(args.csv, args.home)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
