"""Which calibration each built-in trainer should default to (``CCML_CALIBRATION=auto``).

For each shared dataset (../shared/data; skipped when absent) and each trainer, 5-fold stratified
cross-validation of every calibration (``none``, ``sigmoid``, ``isotonic``): mean Brier score and
ROC AUC over the folds, the same folds for all. A calibration is a trainer's default where it
lowers the Brier score on every dataset without lowering ROC AUC on any (by more than
``AUC_SLACK``, fold noise). Run ``python -m bench.calibration``; it prints a table and writes
bench/results/calibration.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
DATA = PROJECT.parent / "shared" / "data"
DATASETS = {
    "course-engagement": (DATA / "course-engagement" / "online_course_engagement_data.csv", None),
    "kddcup2015 roll-up": (
        DATA / "kddcup2015" / "kdd2015_per_enrollment_features.csv",
        PROJECT / "examples" / "schemas" / "kddcup2015.toml",
    ),
}
TRAINERS = ("random_forest", "hist_gradient_boosting", "logistic_regression")
CALIBRATIONS = ("none", "sigmoid", "isotonic")
FOLDS = 5
AUC_SLACK = 0.0


def _table(csv: Path, schema_file: Path | None) -> Any:
    from ccml.core.schema import load_schema
    from ccml.models.training.validation import validate
    from ccml.storage.local import LocalDataSource

    return validate(LocalDataSource(csv).load(), load_schema(schema_file))


def measure() -> dict[str, Any]:
    """Cross-validated Brier and ROC AUC of every trainer x calibration on every dataset present."""
    from ccml.core.components import build_trainer
    from ccml.core.settings import Settings
    from ccml.models.training.evaluation import cross_validate

    results: dict[str, Any] = {}
    for name, (csv, schema_file) in DATASETS.items():
        if not csv.exists():
            print(f"skipped {name}: {csv} not found", file=sys.stderr)
            continue
        table = _table(csv, schema_file)
        for trainer_name in TRAINERS:
            for calibration in CALIBRATIONS:
                trainer = build_trainer(Settings(trainer=trainer_name, calibration=calibration))
                started = time.perf_counter()
                cv = cross_validate(
                    lambda f, t: trainer.fit(f, t, table.schema),  # noqa: B023  (called within this iteration)
                    table.features,
                    table.target,
                    folds=FOLDS,
                    random_state=42,
                    threshold=0.5,
                )
                row = {
                    "brier": cv.mean["brier"],
                    "roc_auc": cv.mean["roc_auc"],
                    "seconds": round(time.perf_counter() - started, 1),
                }
                results.setdefault(name, {}).setdefault(trainer_name, {})[calibration] = row
                print(
                    f"{name:20} {trainer_name:24} {calibration:9} brier {row['brier']:.4f} "
                    f"roc_auc {row['roc_auc']:.4f} ({row['seconds']} s)",
                    flush=True,
                )
    return results


def defaults(results: dict[str, Any]) -> dict[str, str]:
    """Per trainer: the calibration with the lowest mean Brier that beats ``none`` everywhere without costing AUC."""
    chosen: dict[str, str] = {}
    for trainer in TRAINERS:
        best, best_brier = "none", float("inf")
        for calibration in CALIBRATIONS[1:]:
            rows = [(by[trainer][calibration], by[trainer]["none"]) for by in results.values() if trainer in by]
            better = rows and all(c["brier"] < n["brier"] and c["roc_auc"] >= n["roc_auc"] - AUC_SLACK for c, n in rows)
            mean_brier = sum(c["brier"] for c, _ in rows) / len(rows) if rows else float("inf")
            if better and mean_brier < best_brier:
                best, best_brier = calibration, mean_brier
        chosen[trainer] = best
    return chosen


def main() -> None:
    """Measure, print the defaults the rule picks, and write the JSON."""
    results = measure()
    chosen = defaults(results)
    print("defaults:", json.dumps(chosen))
    out = PROJECT / "bench" / "results" / "calibration.json"
    out.write_text(
        json.dumps({"folds": FOLDS, "auc_slack": AUC_SLACK, "results": results, "defaults": chosen}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
