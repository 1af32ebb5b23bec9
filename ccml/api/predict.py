"""``POST /predict`` and ``POST /predict/batch``, the routes on every client's hot path: pure-ASGI endpoints.

Measured in process on the 2-core benchmark machine, FastAPI's per-request machinery
(dependency resolution, body handling, response validation) takes ~100 µs, more than the
model call itself; a pure-ASGI endpoint takes ~15 µs. So ``PredictEndpoint`` is the route
itself (a Starlette ``Route`` in the app's router, see ``serve_predict``), behind
``RequestContextMiddleware`` like every route (request id, the API key gate, metrics, logs
and the body limits apply). Its OpenAPI entry comes from a FastAPI route of the same
schema-built models that is documented but never routed. Errors take the same mapping as
FastAPI's handlers (``ccml.api.errors.response_for``), so clients see the same 4xx answers,
naming the field, on every route.

``BatchEndpoint`` does the same for ``/predict/batch``: the raw body validated in one pydantic-core
call, one model call for the whole batch, the labels counted once per batch and the answer written
without a ``dict`` per row. Measured in process on 1,000 instances: FastAPI's route (parse, validate,
``model_dump`` per instance, a metrics increment and a dict per answer) spent more than the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ccml.api.deps import live_predictor
from ccml.api.errors import response_for
from ccml.api.explain_query import explain_top
from ccml.api.metrics import ApiMetrics
from ccml.core.contracts import Predictor
from ccml.models.serving.drift import DriftMonitor
from ccml.models.serving.explainer import Explainer
from ccml.models.serving.explanations import ExplainerSlot, explain_records, explanation
from ccml.models.serving.watcher import ChampionWatcher

PATH = "/predict"
BATCH_PATH = "/predict/batch"
# A batch body at least this large (about 80 records) is answered off the event loop (ONNX Runtime
# releases the GIL while it runs), so other requests flow; for less the hop to a worker thread
# costs more than it frees.
THREAD_BODY_BYTES = 16 * 1024


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def parse_body(model: type[BaseModel], body: bytes, content_type: str | None) -> BaseModel:
    """Validate a raw JSON body against ``model``, in one pydantic-core call; errors as FastAPI
    reports a body's (``loc`` starting with "body")."""
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    if not _is_json(content_type):
        message = f"Content-Type must be application/json, got {content_type or 'none'}"
        raise RequestValidationError([{"type": "content_type", "loc": ("body",), "msg": message, "input": None}])
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


def parse_record(model: type[BaseModel], body: bytes, content_type: str | None) -> dict[str, Any]:
    """Validate a raw JSON body against a record model (see ``parse_body``): the record's fields."""
    record: dict[str, Any] = vars(parse_body(model, body, content_type))
    return record


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


async def _respond(
    scope: Scope, receive: Receive, send: Send, answer: Callable[[bytes, str | None, Scope], bytes], threaded: bool
) -> None:
    """Answer a request with ``answer(body, content_type, scope)``'s JSON: errors as ``response_for``
    maps them, none to a client that left. ``threaded``: a large body, answered in a worker thread."""
    headers = Headers(scope=scope)
    try:
        body = await _read_body(receive)
        if threaded and len(body) >= THREAD_BODY_BYTES:
            content = await run_in_threadpool(answer, body, headers.get("content-type"), scope)
        else:
            content = answer(body, headers.get("content-type"), scope)
    except ClientDisconnect:
        return  # nobody to answer
    except Exception as exc:  # the endpoint's boundary: every failure gets the mapped answer
        await response_for(exc)(scope, receive, send)
        return
    # What JSONResponse would send, without building a Response object per request.
    await send({"type": "http.response.start", "status": 200, "headers": _json_headers(len(content))})
    await send({"type": "http.response.body", "body": content})


def _dumps(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class PredictEndpoint:
    """One record in, ``{prediction, probability, model_version}`` out, from the live model; with
    ``?explain=true`` also its ``explanation`` (see ``ccml.models.serving.explanations``). The record
    goes into the drift summary (``drift``) once scored."""

    path = PATH  # the route label RequestContextMiddleware reads for metrics and logs

    def __init__(
        self,
        watcher: ChampionWatcher,
        metrics: ApiMetrics,
        record_model: type[BaseModel],
        explainers: ExplainerSlot,
        drift: DriftMonitor | None = None,
    ) -> None:
        self.watcher = watcher
        self.metrics = metrics
        self.record_model = record_model
        self.explainers = explainers
        self.drift = drift

    def answer(self, body: bytes, content_type: str | None, scope: Scope, top: int | None = None) -> dict[str, Any]:
        """Return the answer to one ``/predict`` body, counted in the metrics; with ``top``, also the
        prediction's ``explanation`` (``top`` factors).

        Raises:
            RequestValidationError: the body is empty, not JSON, or not a valid record.
            ModelNotLoadedError: no model is loaded yet.
            ExplanationUnavailableError: ``top`` is given and the live version has no explainer (409).
        """
        record = parse_record(self.record_model, body, content_type)
        predictor = live_predictor(self.watcher, scope)
        if top is not None:  # before counting: a refused explanation is not a prediction
            explainer = self.explainers.explainer(predictor)
            contributions = explainer.explain_one(explainer.encoder.row(record))
        answer = count_and_label(predictor, self.metrics, predictor.predict_one(record))
        answer["model_version"] = predictor.version
        if top is not None:
            answer["explanation"] = explanation(explainer, record, contributions, top)
        if self.drift is not None:
            self.drift.record(predictor, record)
        return answer

    def content(self, body: bytes, content_type: str | None, scope: Scope) -> bytes:
        """The JSON bytes of ``answer`` (explained when the query asks for it)."""
        query = scope.get("query_string")
        # Reading the query is the only work a plain /predict does for explanations.
        top = explain_top(query, self.explainers.top) if query else None
        return _dumps(self.answer(body, content_type, scope, top))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``POST /predict`` as an ASGI app: errors as ``response_for`` maps them, none to a client that left.

        The API key was checked by ``RequestContextMiddleware``'s gate before the body was read.
        """
        scope["route"] = self
        await _respond(scope, receive, send, self.content, threaded=False)


class BatchEndpoint:
    """``{"instances": [...]}`` in, ``{predictions: [{prediction, probability}], model_version}`` out, in
    request order, every answer from one model call of the live model; the records go into the drift
    summary (``drift``) once scored."""

    path = BATCH_PATH

    def __init__(
        self,
        watcher: ChampionWatcher,
        metrics: ApiMetrics,
        batch_model: type[BaseModel],
        explainers: ExplainerSlot,
        drift: DriftMonitor | None = None,
    ) -> None:
        self.watcher = watcher
        self.metrics = metrics
        self.batch_model = batch_model
        self.explainers = explainers
        self.drift = drift

    def _scored(
        self, body: bytes, content_type: str | None, scope: Scope, explain: bool
    ) -> tuple[Predictor, Explainer | None, list[dict[str, Any]], list[float]]:
        """The live model, its explainer (when asked: looked up first, so a refused explanation scores
        nothing), the batch's records and their probabilities, counted in the drift summary."""
        instances = parse_body(self.batch_model, body, content_type).instances  # type: ignore[attr-defined]
        predictor = live_predictor(self.watcher, scope)
        explainer = self.explainers.explainer(predictor) if explain else None
        records = [vars(instance) for instance in instances]
        probabilities = predictor.predict_proba(records).tolist()
        if self.drift is not None:
            self.drift.record_many(predictor, records)
        return predictor, explainer, records, probabilities

    def explained(self, body: bytes, content_type: str | None, scope: Scope, top: int) -> bytes:
        """``content`` with each prediction's ``explanation`` (``top`` factors), in request order."""
        predictor, explainer, records, probabilities = self._scored(body, content_type, scope, explain=True)
        assert explainer is not None  # asked for: _scored raised if the version has none
        explanations = explain_records(explainer, records, top)
        items = []
        for probability, explained in zip(probabilities, explanations, strict=True):
            item = count_and_label(predictor, self.metrics, probability)
            item["explanation"] = explained
            items.append(item)
        return _dumps({"predictions": items, "model_version": predictor.version})

    def content(self, body: bytes, content_type: str | None, scope: Scope) -> bytes:
        """Return the JSON answer to one ``/predict/batch`` body, its labels counted in the metrics.

        Raises:
            RequestValidationError: the body is empty, not JSON, or not a valid batch (``loc`` names the instance).
            ModelNotLoadedError: no model is loaded yet.
        """
        query = scope.get("query_string")
        top = explain_top(query, self.explainers.top) if query else None
        if top is not None:
            return self.explained(body, content_type, scope, top)
        predictor, _, _, probabilities = self._scored(body, content_type, scope, explain=False)
        threshold = predictor.threshold
        negative, positive = (json.dumps(label, ensure_ascii=False) for label in predictor.labels)
        # repr(float) is what json.dumps writes for a float; the probabilities are finite, within [0, 1].
        items = [
            f'{{"prediction":{positive if p >= threshold else negative},"probability":{p!r}}}' for p in probabilities
        ]
        completed = sum(p >= threshold for p in probabilities)
        self.metrics.prediction(predictor.labels[1], completed)
        self.metrics.prediction(predictor.labels[0], len(probabilities) - completed)
        version = json.dumps(predictor.version, ensure_ascii=False)
        return f'{{"predictions":[{",".join(items)}],"model_version":{version}}}'.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``POST /predict/batch`` as an ASGI app (see ``PredictEndpoint``); a large batch in a worker thread."""
        scope["route"] = self
        await _respond(scope, receive, send, self.content, threaded=True)


def serve_predict(app: FastAPI, endpoints: Mapping[str, tuple[ASGIApp, APIRoute]]) -> None:
    """Make each endpoint (``{path: (endpoint, documented)}``) the app's ``POST`` route of its path, documented
    in OpenAPI by ``documented`` (a FastAPI route of the same path and models that is never routed)."""
    for path, (endpoint, _) in endpoints.items():
        app.router.routes.insert(0, Route(path, endpoint, methods=["POST"]))
    documented = [route for _, route in endpoints.values()]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            routes = [*documented, *(route for route in app.routes if all(route is not d for d in documented))]
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
