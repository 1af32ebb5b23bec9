"""The floor: a FastAPI app that answers ``POST /predict`` with a constant and runs no model.

Whatever ``ccml serve`` costs beyond this app's answer is ccml's own overhead (validation,
encoding, the model, metrics, logging). Served by plain uvicorn with the settings ccml uses
(uvloop, httptools, one worker, no access log):

    uvicorn bench.floor_app:app --loop uvloop --http httptools --workers 1 --no-access-log

The body is not read or validated: this is the least any FastAPI app can do per request.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

# The shape of ccml's answer, so both send about as many bytes back.
ANSWER = {"prediction": "Completed", "probability": 0.5, "model_version": "floor"}

app = FastAPI(title="floor")


@app.post("/predict")
async def predict() -> JSONResponse:
    return JSONResponse(ANSWER)


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}
