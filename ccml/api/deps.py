"""Dependencies: how routes get components from the app state."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.types import Scope

from ccml.api.metrics import ApiMetrics
from ccml.core.contracts import Predictor
from ccml.core.errors import ModelNotFoundError
from ccml.models.serving import ChampionWatcher

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The value of CCML_API_KEY.")


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
# thread pool, a hop that costs more than the whole ONNX prediction.
async def get_watcher(request: Request) -> ChampionWatcher:
    return cast(ChampionWatcher, request.app.state.watcher)


async def get_metrics(request: Request) -> ApiMetrics:
    return cast(ApiMetrics, request.app.state.metrics)


def live_predictor(watcher: ChampionWatcher, scope: Scope) -> Predictor:
    """The live model, read once: the whole request is answered by this one version, which
    goes into the request's state for the log line."""
    predictor = watcher.current
    if predictor is None:
        raise ModelNotFoundError("no model is loaded yet: train one and promote it to 'champion'")
    scope.setdefault("state", {})["model_version"] = predictor.version
    return predictor


async def get_predictor(request: Request) -> Predictor:
    return live_predictor(cast(ChampionWatcher, request.app.state.watcher), request.scope)


WatcherDep = Annotated[ChampionWatcher, Depends(get_watcher)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]


def check_key(expected: SecretStr, key: str | None) -> None:
    """Raise 401 unless ``key`` is the configured API key."""
    # compare_digest: the time taken does not reveal how much of the key matched.
    if key is None or not secrets.compare_digest(key.encode(), expected.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong X-API-Key header", headers={"WWW-Authenticate": "APIKey"})


def api_key_checker(expected: SecretStr) -> Callable[[str | None], Awaitable[None]]:
    async def check_api_key(key: Annotated[str | None, Security(API_KEY_HEADER)]) -> None:
        check_key(expected, key)

    return check_api_key
