"""Section 1, in-process: one-row latency and 100k-row batch throughput of both backends.

Both predictors load the same stored model version (a random forest with ccml's defaults).
One-row calls alternate backend by backend, call by call, so machine noise (this machine is
shared) hits them alike; then ONNX calls run back to back, as a server runs them, for the
model-call target. Batch repetitions rotate the contenders' order for the same reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import explain as explained
from bench.common import median, percentile
from bench.report import Plan, Report

SECTION = "in_process"
WARMUP_CALLS = 30
WARM_CALLS = 2000
WARM_BLOCK = 100
BATCH_WARMUP_ROWS = 4096  # over ccml.models.serving.onnx.LARGE_BATCH: builds the large session untimed


def run(report: Report, plan: Plan, home: Path, version: str) -> dict[str, Any]:
    from ccml.core.components import build_model_store
    from ccml.core.model_files import ONNX_FILE
    from ccml.core.settings import Settings
    from ccml.models.serving.encoding import RecordEncoder
    from ccml.models.serving.input_plan import InputPlan
    from ccml.models.serving.onnx import PLAN_KEY, OnnxPredictor
    from ccml.models.serving.onnx import ort_session as onnx_session
    from ccml.models.serving.sklearn import SklearnPredictor

    settings = Settings(home=home)
    schema = settings.feature_schema()
    artifact = build_model_store(settings).load(version)
    sklearn_predictor = SklearnPredictor(artifact)
    onnx_predictor = OnnxPredictor(artifact)
    record: list[dict[str, Any]] = [dict(schema.example_record())]

    # The bare ONNX Runtime call on an already-encoded row, in a session built as
    # OnnxPredictor's single-row one is: what the model itself costs, without encoding and checks.
    session = onnx_session(artifact.files[ONNX_FILE], 1)
    input_plan = session.get_modelmeta().custom_metadata_map.get(PLAN_KEY)
    encoded = RecordEncoder(schema).encode(record)
    row = (InputPlan.from_json(input_plan).transform(encoded) if input_plan else encoded).astype(np.float32)
    feeds = {"input": row}

    p_sklearn = float(sklearn_predictor.predict_proba(record)[0])
    p_onnx = onnx_predictor.predict_one(record[0])
    if abs(p_sklearn - p_onnx) > 1e-5:
        raise RuntimeError(f"the backends disagree on the example record: {p_sklearn} vs {p_onnx}")

    def predict_sklearn() -> Any:
        return sklearn_predictor.predict_proba(record)

    def predict_onnx() -> Any:
        # The call the API makes per request.
        return onnx_predictor.predict_one(record[0])

    def run_session() -> Any:
        return session.run(None, feeds)

    for call in (predict_sklearn, predict_onnx, run_session):
        for _ in range(WARMUP_CALLS):
            call()
    # Phase 1, the comparison: the two backends alternate call by call. Each ONNX call then
    # follows ~10 ms of scikit-learn work that evicts its data from the CPU caches, so its
    # figure here is a cold-cache latency (measured 4-7x the warm one on this machine).
    alternating = _alternate({"sklearn": predict_sklearn, "onnx": predict_onnx}, plan.one_row_calls, block=1)
    # Phase 2, the model call as a server runs it: ONNX calls back to back (warm caches), in
    # blocks that alternate with the bare session so noise still hits both alike.
    warm = _alternate({"onnx": predict_onnx, "onnxruntime_session": run_session}, WARM_CALLS, block=WARM_BLOCK)
    sklearn, onnx_cold, onnx_warm, bare = (
        alternating["sklearn"],
        alternating["onnx"],
        warm["onnx"],
        warm["onnxruntime_session"],
    )
    predictor_call = "one record (dict) -> probability"
    alternated = f"{plan.one_row_calls:,} calls alternating with the other backend call by call"
    blocked = f"{WARM_CALLS:,} calls back to back, in blocks of {WARM_BLOCK} alternating with the bare session"
    report.add(
        SECTION,
        "one_row_sklearn_median_us",
        f"one-row latency median, SklearnPredictor.predict_proba, {predictor_call}, {alternated}",
        sklearn["median_us"],
        "µs",
    )
    report.add(
        SECTION,
        "one_row_sklearn_p99_us",
        "one-row latency p99, SklearnPredictor (as above)",
        sklearn["p99_us"],
        "µs",
    )
    report.add(
        SECTION,
        "one_row_onnx_alternating_median_us",
        f"one-row latency median, OnnxPredictor.predict_one, {predictor_call}, {alternated} (cold caches)",
        onnx_cold["median_us"],
        "µs",
        compared_to="speed-up over the sklearn backend's median",
        ratio=sklearn["median_us"] / onnx_cold["median_us"],
    )
    report.add(
        SECTION,
        "one_row_onnx_alternating_p99_us",
        "one-row latency p99, OnnxPredictor alternating with SklearnPredictor (as above)",
        onnx_cold["p99_us"],
        "µs",
    )
    report.add(
        SECTION,
        "one_row_onnx_median_us",
        f"one-row latency median, OnnxPredictor.predict_one (the API's call), {predictor_call}, {blocked}",
        onnx_warm["median_us"],
        "µs",
        compared_to="speed-up over the sklearn backend's median",
        ratio=sklearn["median_us"] / onnx_warm["median_us"],
        target="<= 20 µs",
        met=onnx_warm["median_us"] <= 20.0,
    )
    report.add(
        SECTION,
        "one_row_onnx_p99_us",
        "one-row latency p99, OnnxPredictor back to back (as above)",
        onnx_warm["p99_us"],
        "µs",
    )
    report.add(
        SECTION,
        "one_row_onnxruntime_session_median_us",
        f"one-row latency median, bare onnxruntime session.run on a pre-encoded float32 model-input row (1 thread, "
        f"no encoding or checks), {blocked.replace('the bare session', 'OnnxPredictor')}",
        bare["median_us"],
        "µs",
    )
    one_row = {"alternating": alternating, "back_to_back": warm}
    explain = explained.run(report, plan, home, _alternate)

    batch = _batch(report, plan, schema, artifact, sklearn_predictor, onnx_predictor)
    return {
        "model_version": version,
        "one_row": one_row,
        "explain": explain,
        "batch": batch,
        "example_probability": p_onnx,
    }


def _alternate(calls: dict[str, Callable[[], Any]], count: int, block: int) -> dict[str, dict[str, float]]:
    """``count`` timed calls of each contender, in turns of ``block`` calls, the order of the
    contenders reversed every turn; median and p99 in microseconds."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls.items())
    clock = time.perf_counter_ns
    for turn in range(count // block):
        for name, call in order if turn % 2 == 0 else reversed(order):
            timings = samples[name]
            for _ in range(block):
                started = clock()
                call()
                timings.append((clock() - started) / 1000)
    return {
        name: {"median_us": median(values), "p99_us": percentile(values, 99), "calls": len(values)}
        for name, values in samples.items()
    }


def _batch(
    report: Report, plan: Plan, schema: Any, artifact: Any, sklearn_predictor: Any, onnx_predictor: Any
) -> dict[str, Any]:
    from ccml.core.types import Dataset
    from ccml.models.serving.encoding import RecordEncoder
    from ccml.models.training.synthetic import generate
    from ccml.models.training.validation import validate
    from ccml.storage.csv_text import read_csv_text

    # Validated rows (typed, in schema order), as the workflow hands them to a predictor.
    data = generate(schema, plan.batch_rows, seed=2024).to_csv(index=False).encode()
    frame = validate(Dataset(read_csv_text(data, "batch"), "", {}, "batch"), schema).features
    forest = artifact.pipeline[-1]  # the same object SklearnPredictor runs (a Pipeline slice shares steps)

    def sklearn_with(jobs: int) -> Any:
        def call() -> Any:
            forest.n_jobs = jobs
            return sklearn_predictor.predict_proba(frame)

        return call

    contenders: dict[str, Callable[[], Any]] = {
        "onnx": lambda: onnx_predictor.predict_proba(frame),
        "sklearn_n_jobs_1": sklearn_with(1),
        "sklearn_n_jobs_2": sklearn_with(2),
        # Records -> float matrix, which both predictors do first: how much of each is not the model.
        "encoding_only": lambda: RecordEncoder(schema).encode(frame),
    }
    warm = frame.iloc[:BATCH_WARMUP_ROWS]
    onnx_predictor.predict_proba(warm)
    for jobs in (1, 2):
        forest.n_jobs = jobs
        sklearn_predictor.predict_proba(warm)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for rep in range(plan.batch_reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            started = time.perf_counter()
            contenders[name]()
            seconds[name].append(time.perf_counter() - started)
    forest.n_jobs = None  # as served
    rows = len(frame)
    rate = {name: rows / median(values) for name, values in seconds.items()}
    best = max(("sklearn_n_jobs_1", "sklearn_n_jobs_2"), key=lambda name: rate[name])
    for name in ("sklearn_n_jobs_1", "sklearn_n_jobs_2"):
        report.add(
            SECTION,
            f"batch_{name}_rows_per_s",
            f"{rows:,}-row batch, SklearnPredictor (forest n_jobs={name[-1]}), validated DataFrame -> "
            f"probabilities, median of {plan.batch_reps}",
            rate[name],
            "rows/s",
        )
    report.add(
        SECTION,
        "batch_encoding_only_rows_per_s",
        f"{rows:,}-row batch, RecordEncoder.encode alone (validated DataFrame -> float matrix; both predictors "
        f"run it before their model), median of {plan.batch_reps}",
        rate["encoding_only"],
        "rows/s",
    )
    report.add(
        SECTION,
        "batch_onnx_rows_per_s",
        f"{rows:,}-row batch, OnnxPredictor (ONNX Runtime, one thread per core for large batches), "
        f"validated DataFrame -> probabilities, median of {plan.batch_reps}",
        rate["onnx"],
        "rows/s",
        compared_to=f"scikit-learn's best ({best.replace('sklearn_', '')})",
        ratio=rate["onnx"] / rate[best],
        target=">= 1.0x scikit-learn's best n_jobs",
        met=rate["onnx"] >= rate[best],
    )
    return {
        "rows": rows,
        "reps": plan.batch_reps,
        "seconds": seconds,
        "rows_per_s": rate,
        "sklearn_best": best,
    }
