"""Event-driven retraining: which announced objects to train on, exactly once each.

Used by the Lambda handler and by ``ccml retrain --event FILE`` alike, so the container-task
path runs the very same code. Every announced object is planned (skipped, or one or more
trainings) before anything trains; each training runs at most once, under the claim of its
identity. A table CSV is one training; a drop of several objects completed by a marker (a logs
batch) is a ``Drop`` registered in ``DROPS`` by dotted path, so training never imports what reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, cast

import structlog

from ccml.core.components import build_data_source, build_model_store, build_trainer
from ccml.core.contracts import DataSource, ModelStore
from ccml.core.errors import CcmlError, InsufficientTimeError
from ccml.core.events import ObjectCreated, Plan, Training, parse_event
from ccml.core.registry import DATA_SOURCES, Registry
from ccml.core.settings import Settings
from ccml.core.types import Dataset

if TYPE_CHECKING:  # training never imports a backend: the registry names it
    from ccml.models.training.workflow import RetrainWorkflow
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


class Drop(Protocol):
    """A kind of upload made of several objects under one prefix, which trains when its marker lands."""

    def plan(self, obj: ObjectCreated) -> Plan | None:
        """What ``obj`` (in the bucket and data prefix) asks for; None when it is none of this drop's objects.

        Raises:
            EventError: ``obj`` is this drop's marker and says something it cannot do.
        """


# Drops are named by dotted path, so training never imports what reads them (ccml.activity reads
# logs through ccml.storage); a plugin adds one under the ``ccml.drops`` entry-point group.
# A factory takes the settings and the data prefix its objects arrive under.
DROPS: Registry[Callable[[Settings, str], Drop]] = Registry("drop", "ccml.drops")
DROPS.register("logs", "ccml.activity.event_logs:build_logs_drop")


@dataclass
class EventRetrainer:
    """Trains once on each object an S3 event announces in the configured bucket and data prefix.

    The workflow is built on the first training, not with the retrainer: building it imports
    scikit-learn and pandas (about 0.8 s of a Lambda's start), which an event that trains nothing
    (a batch's objects before its marker, keys outside the prefix) never needs.
    """

    workflow_factory: Callable[[], RetrainWorkflow]
    store: ModelStore
    source_for: Callable[[str], DataSource]
    bucket: str | None  # CCML_S3_BUCKET: the only bucket whose objects may train; None: none may
    data_prefix: str
    model_prefix: str
    lease_s: float = 900.0  # Lambda's longest run; in Lambda, the invocation's remaining time
    min_remaining_s: float = 120.0
    drops: tuple[Drop, ...] = ()

    @cached_property
    def workflow(self) -> RetrainWorkflow:
        """The table workflow, built on first use."""
        return self.workflow_factory()

    def skip_reason(self, obj: ObjectCreated) -> str | None:
        """Why an object may not train whatever it is (its bucket or prefix), or None.

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
        return None

    def plan(self, obj: ObjectCreated) -> Plan:
        """What ``obj`` asks for: skipped, a drop's trainings (or its wait for a marker), or one table to train."""
        reason = self.skip_reason(obj)
        if reason is not None:
            return Plan(skipped=reason)
        for drop in self.drops:
            if (planned := drop.plan(obj)) is not None:
                return planned
        if not obj.key.lower().endswith(".csv"):
            return Plan(skipped="not a .csv object")
        return Plan((Training(obj.identity, AnnouncedObject(self.source_for(obj.uri), obj)),))

    def handle(self, event: dict[str, Any], remaining_s: Callable[[], float] | None = None) -> dict[str, Any]:
        """Train on every object ``event`` announces (each training at most once); see ``ccml.core.events``
        for the shapes accepted. Raises on the first failure, so Lambda (or SQS) retries the event:
        the trainings already done then report "already processed"."""
        parsed = parse_event(event)
        for message in parsed.ignored:
            log.info("event_ignored", **message.summary())
        # Every object is planned (a marker read and checked) before any trains, as the whole event is
        # parsed first: one bad marker stops the event before any of it trains.
        plans = [(obj, self.plan(obj)) for obj in parsed.objects]
        results = [result for obj, plan in plans for result in self._run(obj, plan, remaining_s)]
        return {"results": results, "ignored": [message.summary() for message in parsed.ignored]}

    def _run(self, obj: ObjectCreated, plan: Plan, remaining_s: Callable[[], float] | None) -> list[dict[str, Any]]:
        if plan.skipped is not None:
            log.info("event_skipped", reason=plan.skipped, bucket=obj.bucket, key=obj.key)
            return [{"object": obj.uri, "status": "skipped", "reason": plan.skipped}]
        return [self._train(obj, training, remaining_s) for training in plan.trainings]

    def _train(self, obj: ObjectCreated, training: Training, remaining_s: Callable[[], float] | None) -> dict[str, Any]:
        summary: dict[str, Any] = {"object": obj.uri, **training.summary}
        if remaining_s is not None and remaining_s() < self.min_remaining_s:
            raise InsufficientTimeError(
                f"only {remaining_s():.0f} s left, under CCML_LAMBDA_MIN_REMAINING_S={self.min_remaining_s:.0f}: "
                f"not starting; run `ccml retrain --event FILE` as a container task (ECS) for {obj.uri}"
            )
        # A holder cannot outlive its invocation: once Lambda's deadline passes, its claim
        # expires, so the retry Lambda makes after a timeout takes it over instead of
        # reporting "already being processed" for the rest of a 15-minute lease.
        lease_s = self.lease_s if remaining_s is None else min(self.lease_s, remaining_s())
        claim = self.store.claim(training.identity, lease_s)
        if not claim.granted:
            log.info(
                "object_already_processed",
                object=obj.uri,
                training=training.identity,
                reason=claim.reason,
                version=claim.version,
            )
            return {**summary, "status": "already processed", "reason": claim.reason, "version": claim.version}
        try:
            outcome = self._workflow(training).run(training.source)
        except Exception as exc:  # the claim's boundary: whatever failed, a retry may take it over
            self.store.fail_claim(training.identity, str(exc) if isinstance(exc, CcmlError) else repr(exc))
            raise
        self.store.complete_claim(training.identity, outcome.version)
        return {**summary, "status": "trained", **outcome.summary()}

    def _workflow(self, training: Training) -> RetrainWorkflow:
        """The table workflow itself, or a copy with the training's own schema and alias where it names them."""
        if training.schema is None and training.alias is None:
            return self.workflow
        schema, alias = training.schema or self.workflow.schema, training.alias or self.workflow.alias
        return replace(self.workflow, schema=schema, alias=alias)


def build_event_retrainer(settings: Settings) -> EventRetrainer:
    """The components of event-driven retraining, built from settings.

    The events are S3's, so the S3 data source's settings (``CCML_S3_*``) say which bucket and
    prefix may train, whatever the model store. Every registered drop is built (see ``DROPS``).
    """
    store = build_model_store(settings)
    s3 = cast("S3Settings", settings.backend(DATA_SOURCES, "s3"))

    def workflow() -> RetrainWorkflow:
        from ccml.models.training.workflow import RetrainWorkflow

        return RetrainWorkflow.from_settings(settings, store, build_trainer(settings))

    return EventRetrainer(
        workflow_factory=workflow,
        store=store,
        source_for=lambda uri: build_data_source(settings, uri),
        bucket=s3.bucket,
        data_prefix=s3.data_prefix,
        model_prefix=s3.model_prefix,
        min_remaining_s=settings.lambda_min_remaining_s,
        drops=tuple(DROPS.get(name)(settings, s3.data_prefix) for name in DROPS.names()),
    )
