"""Request-body limits: how large a body may be, how long it may take to arrive, and a client
that leaves halfway through sending it. ``RequestContextMiddleware`` applies them to every route."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from ccml.core.schema import Feature, FeatureSchema

MIB: Final = 1024**2
# nginx's "client closed request": the client left before the answer, which is no server error.
CLIENT_CLOSED_REQUEST: Final = 499
# The longest a finite double is as Python's json writes it, sign included: "-2.2250738585072014e-308".
_LONGEST_FLOAT: Final = 24
# Room over the compact encoding for whitespace, such as a pretty-printed body.
_SLACK: Final = 2


def _longest_value(feature: Feature) -> int:
    if feature.has_categories:
        return max(len(json.dumps(category)) for category in feature.category_list)
    if feature.type == "boolean":
        return len("false")
    low, high = feature.bounds
    if feature.type == "numeric":
        return _LONGEST_FLOAT - (1 if low >= 0 else 0)
    # The widest integers are the bounds, written as 18 or as 18.0 (both integers in JSON Schema).
    return max(len(form) for bound in (low, high) for form in (str(int(bound)), repr(float(bound))))


def largest_record_bytes(schema: FeatureSchema) -> int:
    """The longest one valid record is as ``json.dumps`` writes it (", " and ": " separators)."""
    items = [len(json.dumps(feature.name)) + len(": ") + _longest_value(feature) for feature in schema.features]
    return len("{}") + sum(items) + len(", ") * (len(items) - 1)


def body_limit(schema: FeatureSchema, max_batch: int, configured: int | None) -> int:
    """The body limit: ``configured`` (CCML_MAX_BODY_BYTES) if set, else the size a ``max_batch``
    batch of the largest records needs, twice over for whitespace, in whole MiB (at least 1)."""
    if configured is not None:
        return configured
    envelope = len('{"instances": []}')
    batch = envelope + max_batch * largest_record_bytes(schema) + len(", ") * (max_batch - 1)
    return max(1, math.ceil(_SLACK * batch / MIB)) * MIB


def too_large_message(limit: int) -> str:
    """Return the 413 message for a body over ``limit`` bytes."""
    return f"request body is larger than the limit of {limit} bytes"


def too_slow_message(seconds: float) -> str:
    """Return the 408 message for a body that did not arrive within ``seconds``."""
    return f"request body did not arrive within {seconds:g} s"


class BodyDeadlines:
    """The deadline of every request body being read, enforced by one watchdog task per event
    loop that wakes every ``tick`` seconds: a timer per request (``asyncio.timeout``, or
    ``call_at`` and ``cancel``) was measured at 3-9 µs on every /predict, this at well under 1 µs.

    A body still unread when ``seconds`` have passed (plus at most one tick) has its request's
    task cancelled at the read it waits in, which ``BodyReceive`` turns into a 408.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.tick_s = min(1.0, seconds / 4)
        self._ticks = math.ceil(seconds / self.tick_s)
        self.tick = 0
        # Bodies being waited for, with their request's task; BodyReceive adds and removes itself.
        self.waiting: dict[BodyReceive, asyncio.Task[Any]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task[None] | None = None

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the watchdog on ``loop`` (an app can outlive a loop: TestClient, or tests calling it directly)."""
        self.loop = loop
        self._watchdog = loop.create_task(self._watch(), name="ccml-body-deadlines")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.tick += 1
            for body, task in list(self.waiting.items()):
                # Started in an earlier tick than this many: more than ``seconds`` ago.
                if self.tick - body.started > self._ticks:
                    del self.waiting[body]
                    body.expired = True
                    task.cancel()


class BodyReceive:
    """One request's ``receive``: counts a body sent without Content-Length against the limit
    (413), holds the whole body to the deadline (408) and notes a client that disconnects
    before sending all of it. After the body, reads only wait for a disconnect: no deadline."""

    __slots__ = (
        "_complete",
        "_count",
        "_deadlines",
        "_limit",
        "_receive",
        "_received",
        "disconnected",
        "expired",
        "started",
    )

    def __init__(self, receive: Receive, limit: int, deadlines: BodyDeadlines, *, count: bool) -> None:
        self._receive = receive
        self._limit = limit
        self._count = count
        self._deadlines = deadlines
        self._received = 0
        self._complete = False
        self.started = -1
        self.expired = False
        self.disconnected = False

    async def __call__(self) -> Message:
        """Return the client's next ASGI message, enforcing the limit and the deadline until the body is whole.

        Raises:
            HTTPException: 413 once a counted body exceeds the limit, 408 when its deadline passes.
        """
        if self._complete:
            return await self._receive()
        deadlines = self._deadlines
        if self.started < 0:
            self.started = deadlines.tick
        task = asyncio.current_task()
        waiting = deadlines.waiting
        if task is not None:
            if task.get_loop() is not deadlines.loop:
                deadlines.watch(task.get_loop())
            waiting[self] = task
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self.expired or task is None:
                raise
            task.uncancel()
            # Close the connection: the rest of this body may never come, so it cannot carry another request.
            raise HTTPException(408, too_slow_message(deadlines.seconds), headers={"Connection": "close"}) from None
        finally:
            waiting.pop(self, None)
        if message["type"] == "http.request":
            if self._count:
                self._received += len(message.get("body", b""))
                if self._received > self._limit:
                    raise HTTPException(413, too_large_message(self._limit))
            self._complete = not message.get("more_body", False)
        else:  # http.disconnect: the client left before its body was whole
            self.disconnected = True
        return message
