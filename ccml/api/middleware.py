"""One pure-ASGI middleware for the per-request cross-cutting work: request id, metrics, and
one structured log line per request. Pure ASGI (not BaseHTTPMiddleware) because it runs on
every prediction and must cost microseconds."""

from __future__ import annotations

import os
import re
import time

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ccml.api.errors import error_response
from ccml.api.metrics import ApiMetrics

# A client-supplied id is echoed into logs and headers: accept only plain tokens.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        # A concrete logger, bound once: structlog's lazy proxy would rebuild one on every call.
        # Starlette builds its middleware at the first request, after logging is configured.
        self.log = structlog.get_logger("ccml.api").bind()

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
        request_id = request_id or os.urandom(16).hex()
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

        # bind/reset rather than the bound_contextvars context manager: no generator per request.
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if too_large:
                # Refuse before reading a byte.
                message = f"request body is larger than the limit of {limit} bytes"
                await error_response(413, "body_too_large", message)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive if length_given else receive_counted, send_with_id)
        finally:
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
