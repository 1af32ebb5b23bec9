"""One pure-ASGI middleware for the per-request cross-cutting work: request id, the API-key
gate, the body limits, metrics, and one structured log line per request. Pure ASGI (not
BaseHTTPMiddleware) because it runs on every prediction and must cost microseconds."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ccml.api.auth import KeyGate, route_path, unauthorized
from ccml.api.body import CLIENT_CLOSED_REQUEST, BodyDeadlines, BodyReceive, too_large_message
from ccml.api.errors import response_for
from ccml.api.metrics import ApiMetrics

# A client-supplied id is echoed into logs and headers: accept only plain tokens.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    """In order: the API key (401), a declared body over the limit (413, before reading a byte),
    then the app, with a ``receive`` that enforces the limit and deadline on the body as it
    arrives (413, 408). A client that leaves before its body is whole is counted as 499."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: ApiMetrics,
        max_body_bytes: int,
        body_timeout_s: float,
        gate: KeyGate | None,
        direct: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.app = app
        # POST routes answered straight from here (the prediction endpoints, which map their own
        # errors): past FastAPI's exception and exit-stack middleware and the router's matching,
        # several µs of every /predict. They stay routes of the app too (OpenAPI, TestClient).
        self.direct = dict(direct or {})
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.deadlines = BodyDeadlines(body_timeout_s)
        self.gate = gate
        # A concrete logger, bound once: structlog's lazy proxy would rebuild one on every call.
        # Starlette builds its middleware at the first request, after logging is configured.
        self.log = structlog.get_logger("ccml.api").bind()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI scope: an HTTP request gets the class docstring's checks, a metrics count and a log line.

        Other scopes (lifespan, websocket) pass straight to the app. A client that disconnects is
        counted and logged as 499, not raised.
        """
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        length: bytes | None = None
        key: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _REQUEST_ID.match(candidate) else ""
            elif name == b"content-length":
                length = value
            elif name == b"x-api-key":
                key = value
        request_id = request_id or os.urandom(16).hex()
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        limit = self.max_body_bytes
        # Without Content-Length (chunked) the body is counted as it streams; with one, the
        # server frames the body by it. The route reads it inside FastAPI, which passes an
        # HTTPException raised by ``body`` on to the JSON error handlers.
        body = None if length == b"0" else BodyReceive(receive, limit, self.deadlines, count=length is None)
        # bind/reset rather than the bound_contextvars context manager: no generator per request.
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if self.gate is not None and self.gate.refuses(scope, key):
                await response_for(unauthorized())(scope, receive, send_with_id)
            elif length is not None and length.isdigit() and int(length) > limit:
                # Refuse before reading a byte.
                await response_for(HTTPException(413, too_large_message(limit)))(scope, receive, send_with_id)
            else:
                endpoint = self.direct.get(route_path(scope)) if scope["method"] == "POST" else None
                await (endpoint or self.app)(scope, receive if body is None else body, send_with_id)
        except ClientDisconnect:
            status = CLIENT_CLOSED_REQUEST  # nobody to answer
        finally:
            if body is not None and body.disconnected:
                status = CLIENT_CLOSED_REQUEST
            elapsed = time.perf_counter() - started
            path = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.request(method, path, status, elapsed)
            self.log.info(
                "request_finished",
                method=method,
                route=path,
                status=status,
                latency_ms=round(elapsed * 1000, 3),
                model_version=scope.get("state", {}).get("model_version"),
            )
            structlog.contextvars.reset_contextvars(**tokens)
