"""The HTTP routes. Request bodies are models generated from the active feature schema.

This module deliberately does not use ``from __future__ import annotations``: FastAPI reads
the route signatures at decoration time, and the body types are built at run time.
"""

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ccml.api.bodies import BodyModels, HealthResponse, ReadyResponse, ReloadResponse
from ccml.api.deps import DriftDep, MetricsDep, PredictorDep, WatcherDep
from ccml.api.error_docs import ErrorDocs
from ccml.api.metrics import CONTENT_TYPE
from ccml.core.drift import DriftReport
from ccml.core.model_files import REPORT_FILE
from ccml.models.serving.explanations import MAX_TOP

# The report is a page from the store: it may show images inlined as data and its own styles,
# and nothing else (no script runs, nothing is fetched), whatever bytes the store holds.
REPORT_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

EXPLAIN = Query(
    False,
    description="Add each prediction's `explanation`: its top factors, with direction and size (README "
    '"Reading an explanation"). 409 when the version serving has no explanations.',
)
# Documented as an integer, not nullable: absent means CCML_EXPLAIN_TOP.
TOP = Query(
    None, ge=1, le=MAX_TOP, description="Factors per explanation (default CCML_EXPLAIN_TOP); used with explain=true."
)


def build_router(bodies: BodyModels, protected: list[Any], errors: ErrorDocs | None = None) -> APIRouter:
    """All routes; ``protected`` holds the API-key declaration when one is configured, and
    ``errors`` the documented error answers (by default, those of the default body limits).

    The ``POST /predict`` and ``POST /predict/batch`` routes here only document their endpoints
    (see ``serve_predict``).
    """
    router = APIRouter()
    if errors is None:
        errors = ErrorDocs.defaults(bodies, api_key=bool(protected))
    auth = errors.unauthorized
    batch_body = bodies.batch

    @router.post(
        "/predict",
        response_model=bodies.prediction,
        responses=errors.predict,
        dependencies=protected,
        tags=["predict"],
        summary="Predict whether one student completes the course",
        openapi_extra={"requestBody": bodies.record_request_body},
    )
    async def predict(explain: bool = EXPLAIN, top: int = TOP) -> None:
        """Document ``POST /predict``, which ``ccml.api.predict.PredictEndpoint`` answers (never routed here)."""
        raise RuntimeError("POST /predict is answered by PredictEndpoint; this route only documents it")

    @router.post(
        "/predict/batch",
        response_model=bodies.batch_response,
        responses=errors.batch,
        dependencies=protected,
        tags=["predict"],
        summary="Predict for many students at once (results in request order)",
    )
    async def predict_batch(body: batch_body, explain: bool = EXPLAIN, top: int = TOP) -> None:  # type: ignore[valid-type]
        """Document ``POST /predict/batch``, which ``ccml.api.predict.BatchEndpoint`` answers (never routed here)."""
        raise RuntimeError("POST /predict/batch is answered by BatchEndpoint; this route only documents it")

    @router.get("/health", response_model=HealthResponse, tags=["operations"], summary="The process is alive")
    async def health() -> HealthResponse:
        return HealthResponse()

    @router.get(
        "/ready",
        response_model=ReadyResponse,
        responses=errors.no_model,
        tags=["operations"],
        summary="A model is loaded and serving",
    )
    async def ready(predictor: PredictorDep) -> ReadyResponse:
        return ReadyResponse(model_version=predictor.version)

    @router.get(
        "/model",
        responses={**errors.no_model, **auth},
        dependencies=protected,
        tags=["operations"],
        summary="The serving model's manifest: version, metrics, schema, created time; fairness_flags if any groups",
    )
    async def model(predictor: PredictorDep) -> dict[str, Any]:
        return predictor.artifact.manifest.document()

    @router.get(
        "/model/report",
        response_class=Response,
        responses={
            200: {"content": {"text/html": {}}, "description": "One self-contained HTML page."},
            404: {"description": "The serving version has no report (trained before ccml wrote them)."},
            **errors.no_model,
            **auth,
        },
        dependencies=protected,
        tags=["operations"],
        summary="The serving model's evaluation report: curves, calibration, importance, data, fairness",
    )
    async def model_report(predictor: PredictorDep) -> Response:
        page = predictor.artifact.files.get(REPORT_FILE)
        if page is None:
            message = f"model {predictor.version} has no evaluation report: it was trained before ccml wrote them"
            raise HTTPException(404, message)
        headers = {"Content-Security-Policy": REPORT_POLICY, "X-Content-Type-Options": "nosniff"}
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    @router.get(
        "/drift",
        response_model=DriftReport,
        responses={**errors.no_model, **auth},
        dependencies=protected,
        tags=["operations"],
        summary="Each feature's drift: the inputs scored since this version loaded against its training data (PSI)",
    )
    async def drift(predictor: PredictorDep, monitor: DriftDep) -> DriftReport:
        return monitor.report(predictor)

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}, **auth},
        dependencies=protected,
        tags=["operations"],
        summary="Prometheus metrics",
    )
    async def metrics_endpoint(metrics: MetricsDep) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @router.post(
        "/admin/reload",
        response_model=ReloadResponse,
        responses={**auth},
        dependencies=protected,
        tags=["operations"],
        summary="Check the champion alias now and load it if it moved",
    )
    async def reload(watcher: WatcherDep) -> ReloadResponse:
        result = await run_in_threadpool(watcher.check, force=True)
        return ReloadResponse(changed=result.changed, model_version=result.version, error=result.error)

    return router
