"""One pure-ASGI middleware for the per-request cross-cutting work: request id, metrics, and
one structured log line per request. Pure ASGI (not BaseHTTPMiddleware) because it runs on
every prediction and must cost microseconds."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ccml.api.errors import error_response
from ccml.api.metrics import ApiMetrics

log = structlog.get_logger("ccml.api")
# A client-supplied id is echoed into logs and headers: accept only plain tokens.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        too_large = False
        length_given = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _REQUEST_ID.match(candidate) else ""
            elif name == b"content-length":
                length_given = True
                too_large = value.isdigit() and int(value) > self.max_body_bytes
        request_id = request_id or uuid.uuid4().hex
        status = 500
        header = (b"x-request-id", request_id.encode())

        limit = self.max_body_bytes
        received = 0

        async def receive_counted() -> Message:
            # A body without Content-Length (chunked) is counted as it streams. The route reads
            # it inside FastAPI, which passes an HTTPException on to the JSON error handlers.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request body is larger than the limit of {limit} bytes")
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                if too_large:
                    # Refuse before reading a byte.
                    message = f"request body is larger than the limit of {limit} bytes"
                    await error_response(413, "body_too_large", message)(scope, receive, send_with_id)
                else:
                    await self.app(scope, receive if length_given else receive_counted, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                method = scope["method"]
                self.metrics.requests.labels(method, path, status).inc()
                self.metrics.latency.labels(method, path, status).observe(elapsed)
                log.info(
                    "request_finished",
                    method=method,
                    route=path,
                    status=status,
                    latency_ms=round(elapsed * 1000, 3),
                    model_version=scope.get("state", {}).get("model_version"),
                )
