"""structlog set-up, called once by each entry point (CLI, API, Lambda handler).

Logs go to stderr so that ``--json`` output on stdout stays a single document. JSON lines
when stderr is not a terminal (containers, Lambda, CI); readable console output on one.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(level: str = "info", fmt: Literal["auto", "json", "console"] = "auto") -> None:
    """Configure structlog for the whole process: one line per event, on stderr.

    Args:
        level: the lowest level logged: ``debug``, ``info``, ``warning`` or ``error`` (anything else
            raises ``KeyError``).
        fmt: ``json`` lines, ``console`` output, or ``auto``: JSON unless stderr is a terminal.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if use_json:
        processors.append(structlog.processors.dict_tracebacks)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        # PrintLoggerFactory writes unbuffered lines: one event, one line, even across processes.
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
