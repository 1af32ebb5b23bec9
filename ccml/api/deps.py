"""Dependencies: how routes get components from the app state."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from starlette.types import Scope

from ccml.api.metrics import ApiMetrics
from ccml.core.contracts import Predictor
from ccml.core.errors import ModelNotLoadedError
from ccml.models.serving.drift import DriftMonitor
from ccml.models.serving.watcher import ChampionWatcher

NO_MODEL_MESSAGE = "no model is loaded yet: train one and promote it to 'champion'"


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
# thread pool, a hop that costs more than the whole ONNX prediction.
async def get_watcher(request: Request) -> ChampionWatcher:
    """Return the app's ``ChampionWatcher``."""
    return cast(ChampionWatcher, request.app.state.watcher)


async def get_metrics(request: Request) -> ApiMetrics:
    """Return the app's ``ApiMetrics``."""
    return cast(ApiMetrics, request.app.state.metrics)


async def get_drift(request: Request) -> DriftMonitor:
    """Return the app's ``DriftMonitor``."""
    return cast(DriftMonitor, request.app.state.drift)


def live_predictor(watcher: ChampionWatcher, scope: Scope) -> Predictor:
    """The live model, read once: the whole request is answered by this one version, which
    goes into the request's state for the log line."""
    predictor = watcher.current
    if predictor is None:
        raise ModelNotLoadedError(NO_MODEL_MESSAGE)
    scope.setdefault("state", {})["model_version"] = predictor.version
    return predictor


async def get_predictor(request: Request) -> Predictor:
    """Return the live predictor for this request (see ``live_predictor``); ``ModelNotLoadedError`` if none."""
    return live_predictor(cast(ChampionWatcher, request.app.state.watcher), request.scope)


WatcherDep = Annotated[ChampionWatcher, Depends(get_watcher)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
DriftDep = Annotated[DriftMonitor, Depends(get_drift)]
