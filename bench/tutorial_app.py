"""The common baseline: the tutorial way to serve a scikit-learn model with FastAPI.

Loads the fitted Pipeline with ``joblib.load`` at import (the path in ``BENCH_MODEL_PATH``:
a joblib pickle of the very pipeline of the model version ccml serves), and per request builds a
one-row pandas DataFrame from the JSON body and calls ``predict_proba``. The route is
``async def``: with a model that takes milliseconds, a ``def`` route (thread pool) measured
~35% slower under concurrency here, so this is the tutorial's faster variant and the ratio
against it is not inflated. Served by uvicorn with the same settings as the floor app.
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI

LABELS = ("Not Completed", "Completed")

model: Any = joblib.load(os.environ["BENCH_MODEL_PATH"])
app = FastAPI(title="tutorial")


@app.post("/predict")
async def predict(body: dict[str, Any]) -> dict[str, Any]:
    frame = pd.DataFrame([body])
    probability = float(model.predict_proba(frame)[0, 1])
    return {"prediction": LABELS[int(probability >= 0.5)], "probability": probability}


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}
