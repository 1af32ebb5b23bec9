"""Benchmarks of the activity-log work (issue 12): aggregation speed and memory, and early-warning accuracy.

    python -m bench.activity                     # everything: about 8 minutes on 2 cores
    python -m bench.activity --sections aggregation --copies 10
    python -m bench.activity --sections horizons stacking

aggregation: the shared KDD daily logs replicated ``--copies`` times with shifted ids (17.2M rows
at 10), written as CSV and as Parquet under ``--work``; the feature table as of day 30 computed
by ccml on DuckDB from CSV and from Parquet, by ccml on Spark (local[2]) from CSV, and by a plain
pandas baseline (read every file, sum per enrollment: the same counts, active days, first and
last day). Each run is a fresh process, so its peak RSS is its own. horizons: ``ccml horizons``'
evaluation on the shared logs, 5-fold stratified and grouped by course. stacking: one model per
horizon against one model over stacked snapshots, on the same enrollment folds. Results are printed and
written as JSON into ``--out`` (default bench/results).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KDD = ROOT.parent / "shared" / "data" / "kddcup2015"
SCHEMA = ROOT / "examples" / "schemas" / "kddcup2015-logs.toml"
EVENTS = [
    "event_access",
    "event_discussion",
    "event_navigate",
    "event_page_close",
    "event_problem",
    "event_video",
    "event_wiki",
]
DAYS = [7, 14, 21, 30]
ID_SHIFT = 1_000_000


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def replicate(copies: int, work: Path) -> tuple[list[Path], list[Path], int]:
    """The KDD daily files, ``copies`` times over with shifted ids, as CSV and Parquet (made once)."""
    import duckdb

    csv_dir, parquet_dir = work / f"kdd-x{copies}-csv", work / f"kdd-x{copies}-parquet"
    sources = sorted(glob.glob(str(KDD / "raw_daily_by_course" / "trainCourse*.csv")))
    if not sources:
        raise SystemExit(f"the shared KDD logs are not at {KDD}")
    csv_dir.mkdir(parents=True, exist_ok=True)
    parquet_dir.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(["time", *EVENTS])
    for source in sources:
        name = Path(source).stem
        csv, parquet = csv_dir / f"{name}.csv", parquet_dir / f"{name}.parquet"
        if not csv.exists():
            duckdb.sql(
                f"COPY (SELECT enrollment_id + k * {ID_SHIFT} AS enrollment_id, {columns} FROM read_csv('{source}'), "
                f"range({copies}) r(k) ORDER BY k, enrollment_id, time) TO '{csv}' (HEADER, DATEFORMAT '%Y-%m-%d')"
            )
        if not parquet.exists():
            duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{parquet}' (FORMAT parquet)")
    with duckdb.connect() as con:
        counted = con.execute(f"SELECT COUNT(*) FROM read_csv('{csv_dir}/*.csv')").fetchall()
    rows = int(counted[0][0])
    return sorted(csv_dir.glob("*.csv")), sorted(parquet_dir.glob("*.parquet")), rows


def child(engine: str, files: list[str]) -> dict[str, Any]:
    """One aggregation in this (fresh) process: seconds (imports apart), peak RSS and the table's size."""
    begun = time.perf_counter()
    import pandas as pd

    from ccml.activity.aggregation import aggregate
    from ccml.activity.engines import DuckDBEngine, SparkEngine
    from ccml.core.activity import load_activity_schema
    from ccml.core.settings import Settings

    imports_s = time.perf_counter() - begun
    extra: dict[str, Any] = {"imports_s": round(imports_s, 2)}
    started = time.perf_counter()
    if engine == "pandas":
        frames = [
            pd.read_csv(f, usecols=["enrollment_id", "time", *EVENTS], dtype=dict.fromkeys(EVENTS, "int64"))
            for f in files
        ]
        log = pd.concat(frames, ignore_index=True)
        log["total"] = log[EVENTS].sum(axis=1)
        log["day"] = pd.to_datetime(log["time"])
        active = log[log["total"] > 0]
        grouped = active.groupby("enrollment_id")
        table = grouped[[*EVENTS, "total"]].sum()
        table["active_days"] = grouped.size()
        table["first_day"], table["last_day"] = grouped["day"].min(), grouped["day"].max()
        rows = len(table)
    else:
        schema = load_activity_schema(SCHEMA)
        limit = Settings().duckdb_memory_limit
        runner = DuckDBEngine(memory_limit=limit) if engine.startswith("duckdb") else SparkEngine("local[2]")
        if engine == "spark":  # the session's start is not the query's time: report both
            extra["session_start_s"] = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
        result = aggregate(runner, schema, [Path(f) for f in files], [30])
        rows = len(result.table)
    seconds = time.perf_counter() - started
    return {"engine": engine, "seconds": round(seconds, 2), "peak_rss_mb": _peak_mb(), "entities": rows, **extra}


def run_child(engine: str, files: list[Path]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.activity", "--child", engine, *map(str, files)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=ROOT, check=False)
    if done.returncode != 0:
        return {"engine": engine, "error": done.stderr[-1500:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def aggregation(copies: int, work: Path) -> dict[str, Any]:
    csv, parquet, rows = replicate(copies, work)
    print(f"aggregation: {rows:,} log rows ({copies}x the shared KDD logs), features as of day 30", flush=True)
    results = {}
    for name, files in (("duckdb_csv", csv), ("duckdb_parquet", parquet), ("pandas_csv", csv), ("spark_csv", csv)):
        engine = {"duckdb_csv": "duckdb", "duckdb_parquet": "duckdb-parquet", "pandas_csv": "pandas"}.get(name, "spark")
        results[name] = figure = run_child(engine, files)
        print(f"  {name:<15} {json.dumps(figure)}", flush=True)
    baseline = results["pandas_csv"].get("seconds")
    for name in ("duckdb_csv", "duckdb_parquet", "spark_csv"):
        if baseline and "seconds" in results[name]:
            results[name]["speedup_vs_pandas"] = round(baseline / results[name]["seconds"], 2)
    return {
        "log_rows": rows,
        "copies": copies,
        "targets": {"duckdb_csv_s": 5.0, "duckdb_csv_rss_mb": 1024, "duckdb_parquet_s": 1.5},
        **results,
    }


def horizons() -> dict[str, Any]:
    """``ccml horizons``' figures on the shared logs: stratified and grouped by course."""
    from ccml.activity.horizons import evaluate_horizons
    from ccml.activity.inputs import log_source
    from ccml.core.activity import load_activity_schema
    from ccml.core.components import build_trainer
    from ccml.core.settings import Settings

    settings = Settings(trainer="hist_gradient_boosting", log_level="warning")
    schema = load_activity_schema(SCHEMA)
    source = log_source(
        settings, schema, str(KDD / "raw_daily_by_course" / "*.csv"), DAYS, labels=str(KDD / "truth_train.csv")
    )
    table = source.load().frame
    out: dict[str, Any] = {
        "trainer": settings.trainer,
        "folds": 5,
        "targets_roc_auc": dict(zip(DAYS, [0.72, 0.79, 0.84, 0.89], strict=True)),
    }
    for group_by in (None, "course"):
        started = time.perf_counter()
        found = evaluate_horizons(schema, table, build_trainer(settings), DAYS, folds=5, group_by=group_by)
        key = "grouped_by_course" if group_by else "stratified"
        out[key] = [h.as_dict() for h in found]
        print(f"horizons ({key}, {time.perf_counter() - started:.0f} s):", flush=True)
        for h in found:
            auc = f"roc_auc {h.roc_auc:.4f} ± {h.roc_auc_std:.4f}"
            print(f"  day {h.day:>2}: {auc}  pr_auc {h.pr_auc:.4f}  top10% {h.precision_top10:.4f}")
    return out


def stacking() -> dict[str, Any]:
    """One model per horizon against one model over stacked snapshots (the day as a feature), same folds.

    Folds split enrollments (stratified), so an enrollment's snapshots are all on one side.
    """
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from ccml.activity.inputs import log_source
    from ccml.core.activity import load_activity_schema
    from ccml.core.settings import Settings

    settings = Settings(log_level="warning")
    schema = load_activity_schema(SCHEMA)
    logs = str(KDD / "raw_daily_by_course" / "*.csv")
    table = log_source(settings, schema, logs, DAYS, labels=str(KDD / "truth_train.csv")).load().frame
    table["completed"] = (table[schema.labels.column].astype(int) == int(schema.labels.completed_value)).astype(int)
    names = [*schema.feature_schema().feature_names, "day"]
    table["never_active"] = table["never_active"].astype(int)
    first = table[table["day"] == DAYS[0]]
    entities, outcome = first[schema.entity].to_numpy(), first["completed"].to_numpy()
    per: dict[int, list[float]] = {d: [] for d in DAYS}
    stacked: dict[int, list[float]] = {d: [] for d in DAYS}

    def fit() -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(random_state=42)

    for train, _ in StratifiedKFold(5, shuffle=True, random_state=42).split(entities, outcome):
        inside = table[schema.entity].isin(set(entities[train]))
        model = fit().fit(table.loc[inside, names], table.loc[inside, "completed"])
        for day in DAYS:
            today = table["day"] == day
            test = table[today & ~inside]
            alone = fit().fit(table.loc[today & inside, names], table.loc[today & inside, "completed"])
            per[day].append(roc_auc_score(test["completed"], alone.predict_proba(test[names])[:, 1]))
            stacked[day].append(roc_auc_score(test["completed"], model.predict_proba(test[names])[:, 1]))
    out = {
        str(d): {"per_horizon": round(float(np.mean(per[d])), 4), "stacked": round(float(np.mean(stacked[d])), 4)}
        for d in DAYS
    }
    print("stacking (5-fold by enrollment, ROC AUC):", flush=True)
    for key, figures in out.items():
        print(f"  day {key:>2}: one model per horizon {figures['per_horizon']:.4f}, stacked {figures['stacked']:.4f}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["aggregation", "horizons", "stacking"],
        choices=["aggregation", "horizons", "stacking"],
    )
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "ccml-bench-activity")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1:])))
        return 0
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "load_average_start": list(os.getloadavg())}
    if "aggregation" in args.sections:
        report["aggregation"] = aggregation(args.copies, args.work)
    if "horizons" in args.sections:
        report["horizons"] = horizons()
    if "stacking" in args.sections:
        report["stacking"] = stacking()
    report["load_average_end"] = list(os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"activity-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
