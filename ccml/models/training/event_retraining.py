"""Event-driven retraining: which announced objects to train on, exactly once each.

Used by the Lambda handler and by ``ccml retrain --event FILE`` alike, so the container-task
path runs the very same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import structlog

from ccml.core.components import build_data_source, build_model_store, build_trainer
from ccml.core.contracts import DataSource, ModelStore
from ccml.core.errors import CcmlError, InsufficientTimeError
from ccml.core.events import ObjectCreated, parse_event
from ccml.core.registry import DATA_SOURCES
from ccml.core.settings import Settings
from ccml.core.types import Dataset
from ccml.models.training.workflow import RetrainWorkflow

if TYPE_CHECKING:  # training never imports a backend: the registry names it
    from ccml.storage.s3_settings import S3Settings

log = structlog.get_logger(__name__)


class AnnouncedObject(DataSource):
    """The data source of an announced object: the version the event announced, where the bucket
    keeps versions (the claim names it, and it is what trains).

    Without versions only the current bytes can be read; if their ETag is not the announced one,
    the object was overwritten after the event, and that is logged (``event_object_changed``).
    """

    def __init__(self, source: DataSource, announced: ObjectCreated) -> None:
        self.announced = announced
        self.source = source.at_version(announced.version_id) if announced.version_id else source

    def describe(self) -> dict[str, str]:
        """The inner source's description."""
        return self.source.describe()

    def _load(self) -> Dataset:
        dataset = self.source.load()
        if dataset.identity != self.announced.identity:
            log.warning(
                "event_object_changed", announced=self.announced.identity, read=dataset.identity, **self.describe()
            )
        return dataset


@dataclass
class EventRetrainer:
    """Trains once on each object an S3 event announces in the configured bucket and data prefix."""

    workflow: RetrainWorkflow
    store: ModelStore
    source_for: Callable[[str], DataSource]
    bucket: str | None  # CCML_S3_BUCKET: the only bucket whose objects may train; None: none may
    data_prefix: str
    model_prefix: str
    lease_s: float = 900.0  # Lambda's longest run; in Lambda, the invocation's remaining time
    min_remaining_s: float = 120.0

    def skip_reason(self, obj: ObjectCreated) -> str | None:
        """Why an object must not trigger training, or None.

        An object of another bucket never trains: a trigger (or a shared SNS topic or SQS queue)
        wired to the wrong bucket would otherwise train on data nobody vetted and promote it.
        Writes under the model prefix are ignored next, so the store's own writes can never
        re-trigger retraining."""
        if obj.bucket != self.bucket:
            if self.bucket is None:
                return "CCML_S3_BUCKET is not set: no bucket's objects may train"
            return f"bucket {obj.bucket!r} is not CCML_S3_BUCKET ({self.bucket!r})"
        if self.model_prefix and obj.key.startswith(self.model_prefix):
            return "under the model prefix"
        if not obj.key.startswith(self.data_prefix):
            return f"outside the data prefix {self.data_prefix!r}"
        if not obj.key.lower().endswith(".csv"):
            return "not a .csv object"
        return None

    def handle(self, event: dict[str, Any], remaining_s: Callable[[], float] | None = None) -> dict[str, Any]:
        """Train on every object ``event`` announces (each at most once); see ``ccml.core.events``
        for the shapes accepted. Raises on the first failure, so Lambda (or SQS) retries the event:
        the objects already trained then report "already processed"."""
        parsed = parse_event(event)
        for message in parsed.ignored:
            log.info("event_ignored", **message.summary())
        results = [self._process(obj, remaining_s) for obj in parsed.objects]
        return {"results": results, "ignored": [message.summary() for message in parsed.ignored]}

    def _process(self, obj: ObjectCreated, remaining_s: Callable[[], float] | None) -> dict[str, Any]:
        summary: dict[str, Any] = {"object": obj.uri}
        reason = self.skip_reason(obj)
        if reason is not None:
            log.info("event_skipped", reason=reason, bucket=obj.bucket, key=obj.key)
            return {**summary, "status": "skipped", "reason": reason}
        if remaining_s is not None and remaining_s() < self.min_remaining_s:
            raise InsufficientTimeError(
                f"only {remaining_s():.0f} s left, under CCML_LAMBDA_MIN_REMAINING_S={self.min_remaining_s:.0f}: "
                f"not starting; run `ccml retrain --event FILE` as a container task (ECS) for {obj.uri}"
            )
        # A holder cannot outlive its invocation: once Lambda's deadline passes, its claim
        # expires, so the retry Lambda makes after a timeout takes it over instead of
        # reporting "already being processed" for the rest of a 15-minute lease.
        lease_s = self.lease_s if remaining_s is None else min(self.lease_s, remaining_s())
        claim = self.store.claim(obj.identity, lease_s)
        if not claim.granted:
            log.info("object_already_processed", object=obj.uri, reason=claim.reason, version=claim.version)
            return {**summary, "status": "already processed", "reason": claim.reason, "version": claim.version}
        try:
            outcome = self.workflow.run(AnnouncedObject(self.source_for(obj.uri), obj))
        except Exception as exc:  # the claim's boundary: whatever failed, a retry may take it over
            self.store.fail_claim(obj.identity, str(exc) if isinstance(exc, CcmlError) else repr(exc))
            raise
        self.store.complete_claim(obj.identity, outcome.version)
        return {**summary, "status": "trained", **outcome.summary()}


def build_event_retrainer(settings: Settings) -> EventRetrainer:
    """The components of event-driven retraining, built from settings.

    The events are S3's, so the S3 data source's settings (``CCML_S3_*``) say which bucket and
    prefix may train, whatever the model store.
    """
    store = build_model_store(settings)
    s3 = cast("S3Settings", settings.backend(DATA_SOURCES, "s3"))
    return EventRetrainer(
        workflow=RetrainWorkflow.from_settings(settings, store, build_trainer(settings)),
        store=store,
        source_for=lambda uri: build_data_source(settings, uri),
        bucket=s3.bucket,
        data_prefix=s3.data_prefix,
        model_prefix=s3.model_prefix,
        min_remaining_s=settings.lambda_min_remaining_s,
    )
