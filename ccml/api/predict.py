"""``POST /predict``, the route on every client's hot path: a pure-ASGI endpoint.

Measured in process on the 2-core benchmark machine, FastAPI's per-request machinery
(dependency resolution, body handling, response validation) takes ~100 µs, more than the
model call itself; a pure-ASGI endpoint takes ~15 µs. So ``PredictEndpoint`` is the route
itself (a Starlette ``Route`` in the app's router, see ``serve_predict``), behind
``RequestContextMiddleware`` like every route (request id, the API key gate, metrics, logs
and the body limits apply). Its OpenAPI entry comes from a FastAPI route of the same
schema-built models that is documented but never routed. Errors take the same mapping as
FastAPI's handlers (``ccml.api.errors.response_for``), so clients see the same 4xx answers,
naming the field, on every route.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ccml.api.deps import live_predictor
from ccml.api.errors import response_for
from ccml.api.metrics import ApiMetrics
from ccml.core.contracts import Predictor
from ccml.models.serving.watcher import ChampionWatcher

PATH = "/predict"


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def parse_record(model: type[BaseModel], body: bytes, content_type: str | None) -> dict[str, Any]:
    """Validate a raw JSON body against a record model, in one pydantic-core call; errors
    as FastAPI reports a body's (``loc`` starting with "body")."""
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    if not _is_json(content_type):
        message = f"Content-Type must be application/json, got {content_type or 'none'}"
        raise RequestValidationError([{"type": "content_type", "loc": ("body",), "msg": message, "input": None}])
    try:
        record: dict[str, Any] = vars(model.model_validate_json(body))
        return record
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


def count_and_label(predictor: Predictor, metrics: ApiMetrics, probability: float) -> dict[str, Any]:
    """One answer item, ``{prediction, probability}``, and count it in the metrics by its label
    (/predict and /predict/batch)."""
    prediction = predictor.to_prediction(probability)
    metrics.prediction(prediction.label)
    return {"prediction": prediction.label, "probability": probability}


def _json_headers(length: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(length).encode()), (b"content-type", b"application/json")]


async def _read_body(receive: Receive) -> bytes:
    # Request.body() would do the same through an async generator: a few µs more per request.
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class PredictEndpoint:
    """One record in, ``{prediction, probability, model_version}`` out, from the live model."""

    path = PATH  # the route label RequestContextMiddleware reads for metrics and logs

    def __init__(self, watcher: ChampionWatcher, metrics: ApiMetrics, record_model: type[BaseModel]) -> None:
        self.watcher = watcher
        self.metrics = metrics
        self.record_model = record_model

    def answer(self, body: bytes, content_type: str | None, scope: Scope) -> dict[str, Any]:
        """Return the answer to one ``/predict`` body, counted in the metrics.

        Raises:
            RequestValidationError: the body is empty, not JSON, or not a valid record.
            ModelNotLoadedError: no model is loaded yet.
        """
        record = parse_record(self.record_model, body, content_type)
        predictor = live_predictor(self.watcher, scope)
        answer = count_and_label(predictor, self.metrics, predictor.predict_one(record))
        answer["model_version"] = predictor.version
        return answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``POST /predict`` as an ASGI app: errors as ``response_for`` maps them, none to a client that left.

        The API key was checked by ``RequestContextMiddleware``'s gate before the body was read.
        """
        scope["route"] = self
        headers = Headers(scope=scope)
        try:
            body = await _read_body(receive)
            answer = self.answer(body, headers.get("content-type"), scope)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception as exc:  # the endpoint's boundary: every failure gets the mapped answer
            await response_for(exc)(scope, receive, send)
            return
        # What JSONResponse would send, without building a Response object per request.
        content = json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": 200, "headers": _json_headers(len(content))})
        await send({"type": "http.response.body", "body": content})


def serve_predict(app: FastAPI, endpoint: PredictEndpoint, documented: APIRoute) -> None:
    """Make ``endpoint`` the app's ``POST /predict`` route, documented in OpenAPI by ``documented``
    (a FastAPI route of the same path and models that is never routed)."""
    app.router.routes.insert(0, Route(PATH, endpoint, methods=["POST"]))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            routes = [documented, *(route for route in app.routes if route is not documented)]
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                routes=routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
