"""The validating floor: a FastAPI app that validates the ``POST /predict`` body as ccml does (the same
record model, built from the same schema) and answers a constant: no model, no metrics, no log line.

Issue 15's target for ``ccml serve`` is this app's req/s: whatever ccml does beyond it (the model
call, metrics, the request log) must cost no more than FastAPI's own request handling saves. Served
like every contender (uvloop, httptools, one worker, no access log):

    uvicorn bench.validating_floor_app:app --loop uvloop --http httptools --workers 1 --no-access-log
"""

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ccml.api.bodies import api_record_model
from ccml.core.schema import load_schema

# No ``from __future__ import annotations``: FastAPI reads the route's body type at decoration time.
Record: Any = api_record_model(load_schema())
ANSWER = {"prediction": "Completed", "probability": 0.5, "model_version": "floor"}

app = FastAPI(title="validating floor")


@app.post("/predict")
async def predict(record: Record) -> JSONResponse:
    return JSONResponse(ANSWER)


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}
