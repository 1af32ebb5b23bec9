"""Lambda entry point: a CSV lands under ``incoming/`` of ``CCML_S3_BUCKET`` (or a logs batch under
``incoming/logs/<batch>/`` gets its ``_READY`` marker) -> validate, retrain, evaluate, save, promote
if the gate agrees. Invoked by S3 directly, by EventBridge, or through SNS and/or SQS (see
``ccml.core.events``). Configure with the same ``CCML_*`` variables as everything else.
"""

from __future__ import annotations

import functools
from typing import Any

import structlog

from ccml.core.logging import configure_logging
from ccml.core.settings import Settings
from ccml.core.types import LambdaContext
from ccml.models.training.event_retraining import EventRetrainer, build_event_retrainer

log = structlog.get_logger("ccml.handler")


@functools.cache
def _retrainer() -> EventRetrainer:
    # Built once per container, on first invocation (not at import: tests import this module).
    settings = Settings.load()
    configure_logging(settings.log_level, "json")
    return build_event_retrainer(settings)


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point: retrain on the objects ``event`` announces (see ``EventRetrainer``)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=context.aws_request_id)
    try:
        return _retrainer().handle(event, lambda: context.get_remaining_time_in_millis() / 1000)
    except Exception as exc:  # the entry point's boundary
        # One structured line, then re-raise so Lambda's retries and dead-letter queue apply (for an SQS
        # batch: the whole batch returns to the queue; what already trained reports "already processed").
        log.error("retrain_failed", error=str(exc), error_type=type(exc).__name__)
        raise
