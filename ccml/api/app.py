"""``create_app(settings)``: the API as a composition of the settings-built store and predictor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.types import ASGIApp

from ccml import __version__
from ccml.api.auth import KeyGate, api_key_declaration
from ccml.api.bodies import BodyModels
from ccml.api.body import body_limit
from ccml.api.docs import add_docs
from ccml.api.error_docs import ErrorDocs
from ccml.api.errors import register_error_handlers
from ccml.api.metrics import ApiMetrics
from ccml.api.middleware import RequestContextMiddleware
from ccml.api.predict import BATCH_PATH, PATH, BatchEndpoint, PredictEndpoint, serve_predict
from ccml.api.routes import build_router
from ccml.core.components import build_model_store, build_predictor
from ccml.core.logging import configure_logging
from ccml.core.settings import Settings
from ccml.models.serving.drift import DriftMonitor
from ccml.models.serving.explanations import ExplainerSlot
from ccml.models.serving.watcher import ChampionWatcher

log = structlog.get_logger(__name__)


async def _poll(watcher: ChampionWatcher, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(watcher.check)
        except Exception as exc:  # the poller's boundary: it must outlive anything a check hits
            log.error("model_poll_failed", error=f"{type(exc).__name__}: {exc}"[:500])


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Without ``settings`` (``uvicorn --factory``), read them from the environment."""
    if settings is None:
        settings = Settings.load()
        configure_logging(settings.log_level, settings.log_format)
    schema = settings.feature_schema()
    metrics = ApiMetrics()
    store = build_model_store(settings)
    watcher = ChampionWatcher(
        store, lambda artifact: build_predictor(settings, artifact), schema, on_reload=metrics.reload
    )
    drift = DriftMonitor(watcher, settings.drift_thresholds(), on_report=metrics.drift)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        result = await run_in_threadpool(watcher.check)
        if result.version is None:
            log.warning("serving_without_model", reason=result.error, **store.describe())
        elif watcher.current is not None:
            drift.summary(watcher.current)  # the gauges exist from the start, before any request
        poller = asyncio.create_task(_poll(watcher, settings.reload_interval_s))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    key_dependency = Depends(api_key_declaration()) if settings.api_key else None
    protected: list[Any] = [key_dependency] if key_dependency else []
    limit = body_limit(schema, settings.max_batch, settings.max_body_bytes)
    app = FastAPI(
        # FastAPI's native OpenTelemetry checks its providers on every request (about 4 µs of a
        # ~50 µs /predict, in process on the benchmark machine); ccml's metrics are Prometheus'.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="ccml",
        version=__version__,
        summary="Predicts whether a student will complete an online course.",
        description=(
            f"Serves the `champion` model of the configured store for the feature schema **{schema.name}**. "
            "Request fields, ranges and categories come from that schema."
        ),
        lifespan=lifespan,
        # No FastAPI max_body_size: its limiter sits outside every user middleware and answers
        # a Content-Length over the limit with text/plain, replacing our JSON 413 and request id.
        # RequestContextMiddleware enforces the body limits instead.
        docs_url=None,  # FastAPI's pages load their assets from a CDN: ccml.api.docs serves its own
        redoc_url=None,
    )
    app.state.watcher = watcher
    app.state.metrics = metrics
    app.state.drift = drift
    register_error_handlers(app)
    bodies = BodyModels(schema, settings.max_batch)
    errors = ErrorDocs(
        schema,
        bodies.record,
        bodies.batch,
        body_limit=limit,
        body_timeout_s=settings.body_timeout_s,
        api_key=settings.api_key is not None,
    )
    router = build_router(bodies, protected, errors)
    # The two prediction routes are pure-ASGI endpoints (see ccml.api.predict); their FastAPI routes only document them.
    documented = {
        path: next(r for r in router.routes if isinstance(r, APIRoute) and r.path == path)
        for path in (PATH, BATCH_PATH)
    }
    for route in documented.values():
        router.routes.remove(route)
    app.include_router(router)
    explainers = ExplainerSlot(settings.explain_top)  # the live model's, shared by both routes
    endpoints: dict[str, tuple[ASGIApp, APIRoute]] = {
        PATH: (PredictEndpoint(watcher, metrics, bodies.record, explainers, drift), documented[PATH]),
        BATCH_PATH: (BatchEndpoint(watcher, metrics, bodies.batch, explainers, drift), documented[BATCH_PATH]),
    }
    serve_predict(app, endpoints)
    add_docs(app, app.openapi_url or "/openapi.json")
    # The one API-key check: the gate, before any body is read, for every route declaring the key.
    keyed = [*documented.values(), *router.routes]
    gate = KeyGate(settings.api_key, keyed, key_dependency) if settings.api_key else None
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=limit,
        body_timeout_s=settings.body_timeout_s,
        gate=gate,
        direct={path: endpoint for path, (endpoint, _) in endpoints.items()},
    )
    return app
