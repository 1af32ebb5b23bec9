"""Map errors to HTTP answers: a client's mistake is a 4xx naming the field, never a 500."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ccml.core.errors import (
    CcmlError,
    ExplanationUnavailableError,
    InvalidInputError,
    ModelNotFoundError,
    ModelNotLoadedError,
)

log = structlog.get_logger(__name__)
MAX_ERRORS_IN_MESSAGE = 5


def error_response(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """Return the JSON answer every error gets: ``{code, message, errors}`` with HTTP ``status``."""
    return JSONResponse({"code": code, "message": message, "errors": errors or []}, status_code=status)


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    raw = exc.errors()
    if any(error.get("type") == "json_invalid" for error in raw):
        reason = next((e.get("ctx", {}).get("error") for e in raw if e.get("type") == "json_invalid"), "")
        return error_response(400, "invalid_json", f"request body is not valid JSON: {reason}".rstrip(": "))
    errors = [{"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]} for e in raw]
    shown = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:MAX_ERRORS_IN_MESSAGE])
    more = f" (and {len(errors) - MAX_ERRORS_IN_MESSAGE} more)" if len(errors) > MAX_ERRORS_IN_MESSAGE else ""
    return error_response(422, "invalid_input", shown + more, errors)


# The body limits' answers (ccml.api.body), raised as HTTPException from the body as it streams.
_HTTP_CODES = {408: "body_timeout", 413: "body_too_large"}


def _http_response(exc: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code) or f"http_{exc.status_code}"
    response = error_response(exc.status_code, code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def _ccml_response(exc: CcmlError) -> JSONResponse:
    if isinstance(exc, ModelNotLoadedError | ModelNotFoundError):
        return error_response(503, exc.code, str(exc))
    if isinstance(exc, InvalidInputError):
        return error_response(422, exc.code, str(exc))
    if isinstance(exc, ExplanationUnavailableError):  # the request is fine; the serving version cannot explain
        return error_response(409, exc.code, str(exc))
    log.error("request_failed", code=exc.code, error=str(exc))
    return error_response(500, exc.code, str(exc))


def response_for(exc: Exception) -> JSONResponse:
    """The answer to an exception raised while handling a request: one mapping for the
    FastAPI handlers and for ``PredictEndpoint``, which answers outside FastAPI's routing."""
    if isinstance(exc, RequestValidationError):
        return _validation_response(exc)
    if isinstance(exc, HTTPException):
        return _http_response(exc)
    if isinstance(exc, CcmlError):
        return _ccml_response(exc)
    log.exception("request_crashed", error=repr(exc))
    return error_response(500, "internal_error", "internal error; the request id is in the X-Request-ID header")


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    return response_for(exc)


def register_error_handlers(app: FastAPI) -> None:
    """Answer every exception a route raises, unexpected ones included, with ``response_for``."""
    for kind in (RequestValidationError, HTTPException, CcmlError, Exception):
        app.add_exception_handler(kind, _handle)
