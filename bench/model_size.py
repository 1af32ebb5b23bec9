"""Section 6, model size: scikit-learn's random forest defaults vs ccml's, on the shared
course-engagement data (duplicates dropped by validation).

For each: 5-fold stratified CV ROC AUC with ccml's own feature pipeline and CV code, then a
fit on every row and the artifact's size and load time (skops, as ccml stores it, and a joblib
pickle with compress=3). The target: ccml's defaults lose no more than 0.002 ROC AUC.
"""

from __future__ import annotations

import functools
import io
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, median
from bench.report import Report

SECTION = "model_size"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "course-engagement" / "online_course_engagement_data.csv"
FOLDS = 5
LOAD_REPS = 3
MAX_AUC_LOSS = 0.002


# How ccml stores a pipeline (skops, trusted types only), and the pickle a tutorial app keeps.
FORMATS = {"skops": "skops (deflate), as ccml stores it", "joblib": "joblib compress=3, a pickle"}


def _artifact(pipeline: Any) -> dict[str, float]:
    import joblib

    from ccml.core.model_files import dump_pipeline, load_pipeline

    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    payloads = {"skops": dump_pipeline(pipeline), "joblib": buffer.getvalue()}
    loaders = {
        "skops": lambda data: load_pipeline(data, "bench", 1 << 31),
        "joblib": lambda data: joblib.load(io.BytesIO(data)),
    }
    sizes: dict[str, float] = {}
    for name, payload in payloads.items():
        sizes[f"bytes_{name}"] = len(payload)
        times = []
        for _ in range(LOAD_REPS):
            started = time.perf_counter()
            loaders[name](payload)
            times.append(time.perf_counter() - started)
        sizes[f"load_s_{name}"] = median(times)
    sizes["nodes"] = sum(tree.tree_.node_count for tree in pipeline[-1].estimators_)
    return sizes


def run(report: Report, data: Path = DEFAULT_DATA) -> dict[str, Any]:
    if not data.exists():
        return {"skipped": f"{data} is absent"}
    from sklearn.ensemble import RandomForestClassifier

    from ccml.core.schema import load_schema
    from ccml.models.training.evaluation import cross_validate
    from ccml.models.training.features import build_feature_pipeline
    from ccml.models.training.trainers import RandomForestTrainer, SklearnTrainer
    from ccml.models.training.validation import validate

    class _Forest(SklearnTrainer):
        name = "bench_forest"
        estimator_class = RandomForestClassifier

    from ccml.storage.local import LocalDataSource

    schema = load_schema()
    table = validate(LocalDataSource(data).load(), schema)
    # n_jobs changes speed, never the fitted trees; random_state as ccml's trainer sets it.
    configurations = {
        "sklearn_defaults": {"random_state": 42, "n_jobs": -1},
        "ccml_defaults": {**RandomForestTrainer.default_params, "random_state": 42},
    }
    results: dict[str, Any] = {"rows": table.rows, "duplicates_dropped": table.duplicates_dropped}
    for name, params in configurations.items():
        pipeline = build_feature_pipeline(schema, RandomForestClassifier(**params))
        trainer = _Forest(params)  # the forest with exactly these parameters, ccml's pipeline around it
        started = time.perf_counter()
        cv = cross_validate(
            functools.partial(trainer.fit, schema=schema),
            table.features,
            table.target,
            folds=FOLDS,
            random_state=42,
            threshold=0.5,
        )
        cv_s = time.perf_counter() - started
        pipeline.fit(table.features, table.target)
        results[name] = {
            "params": params,
            "cv_roc_auc": cv.mean["roc_auc"],
            "cv_roc_auc_std": cv.std["roc_auc"],
            "cv_seconds": cv_s,
            **_artifact(pipeline),
        }
    ours, theirs = results["ccml_defaults"], results["sklearn_defaults"]
    rows = f"{table.rows:,} rows after dropping {table.duplicates_dropped:,} duplicates"
    for name, label in (
        ("sklearn_defaults", "scikit-learn's RandomForest defaults"),
        ("ccml_defaults", "ccml's defaults"),
    ):
        report.add(
            SECTION,
            f"{name}_cv_roc_auc",
            f"{FOLDS}-fold stratified CV ROC AUC, {label}, course-engagement data ({rows})",
            results[name]["cv_roc_auc"],
            "",
        )
    difference = ours["cv_roc_auc"] - theirs["cv_roc_auc"]
    report.add(
        SECTION,
        "roc_auc_difference",
        "CV ROC AUC of ccml's defaults minus scikit-learn's defaults (negative = ccml's lose)",
        difference,
        "ROC AUC",
        target=f">= -{MAX_AUC_LOSS}",
        met=difference >= -MAX_AUC_LOSS,
    )
    for name, how in FORMATS.items():
        key = f"bytes_{name}"
        report.add(
            SECTION,
            f"artifact_mb_{name}",
            f"fitted pipeline size, ccml's defaults, {how} (fitted on all {table.rows:,} rows; "
            f"{ours['nodes']:,} vs {theirs['nodes']:,} tree nodes)",
            ours[key] / 1e6,
            "MB",
            compared_to=f"scikit-learn's defaults ({theirs[key] / 1e6:.1f} MB)",
            ratio=ours[key] / theirs[key],
        )
        key = f"load_s_{name}"
        report.add(
            SECTION,
            f"artifact_load_s_{name}",
            f"load of that artifact ({how}), ccml's defaults, median of {LOAD_REPS}",
            ours[key],
            "s",
            compared_to=f"scikit-learn's defaults ({theirs[key]:.3f} s)",
            ratio=ours[key] / theirs[key],
        )
    return results
