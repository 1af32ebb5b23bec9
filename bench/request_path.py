"""Before/after of the API's request path: a pandas DataFrame per request vs the numpy path.

Both paths score the same validated record with the same fitted pipeline; calls alternate
between the two so machine noise hits both alike. Prints medians and writes JSON.

    python -m bench.request_path [--calls 3000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common import RESULTS
from ccml.core.settings import Settings
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.models.training.fitting import train_and_evaluate
from ccml.models.training.synthetic import generate
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.validation import validate
from ccml.storage.local import LocalDataSource


def _median_us(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    settings = Settings()
    schema = settings.feature_schema()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sample.csv"
        generate(schema, 5000, seed=7).to_csv(path, index=False)
        table = validate(LocalDataSource(path).load(), schema)
    result = train_and_evaluate(RandomForestTrainer(), table)
    predictor = SklearnPredictor(result.artifact)
    pipeline = result.artifact.pipeline
    record: dict[str, Any] = dict(schema.example_record())

    def dataframe_path() -> float:
        return float(pipeline.predict_proba(pd.DataFrame([record]))[0, 1])

    def numpy_path() -> float:
        return float(predictor.predict_proba([record])[0])

    assert abs(dataframe_path() - numpy_path()) < 1e-12, "the two paths must agree"
    timings: dict[str, list[float]] = {"dataframe": [], "numpy": []}
    for _ in range(args.calls):
        for name, call in (("dataframe", dataframe_path), ("numpy", numpy_path)):
            started = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - started)
    report = {
        "benchmark": "request_path",
        "what": "one validated record -> probability, random forest (ccml defaults), median over alternating calls",
        "calls": args.calls,
        "median_us": {name: _median_us(samples) for name, samples in timings.items()},
        "at": datetime.now(UTC).isoformat(),
    }
    report["speedup"] = round(report["median_us"]["dataframe"] / report["median_us"]["numpy"], 2)
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"request_path-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
