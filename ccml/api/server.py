"""``ccml serve``: uvicorn with the app factory, fixed for multi-worker latency.

With ``--workers`` > 1 uvicorn shares one listening socket between processes and its
accepted connections end up without TCP_NODELAY, so every keep-alive response waits ~40 ms
for the client's delayed ACK (uvicorn issue #3149). Our protocol classes set TCP_NODELAY on
each accepted connection, whatever the worker count.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile

import uvicorn


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # httptools is optional; h11 is imported only then (it costs start-up time)
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


# Module level, not built in a function: with --workers > 1 uvicorn pickles its config,
# protocol class included, for the worker processes.
class NoDelayProtocol(_Base):
    """The HTTP protocol of uvicorn (httptools if installed, else h11), with TCP_NODELAY on each TCP connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn types it
        """Set TCP_NODELAY on the accepted connection, then handle it as uvicorn does."""
        _set_nodelay(transport)
        super().connection_made(transport)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the API until interrupted. Settings come from the environment in every worker."""
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before any worker imports prometheus_client (see ccml.api.metrics).
        metrics_dir = tempfile.mkdtemp(prefix="ccml-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "ccml.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            http=NoDelayProtocol,
            access_log=False,  # ccml logs one structured line per request itself
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
