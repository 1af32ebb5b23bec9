"""The retraining workflow: load -> validate -> train -> evaluate -> compare -> save -> promote.

One object, used by ``ccml train``, ``ccml retrain`` and the Lambda handler alike. The store
is touched only after validation and training succeeded, and the champion alias moves last,
so any failure before that leaves the serving model as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from ccml.core.artifact import Manifest, ModelArtifact, PromotionDecision
from ccml.core.contracts import CHAMPION, DataSource, ModelStore, Predictor, Trainer
from ccml.core.errors import ArtifactIntegrityError, CcmlError, ModelNotFoundError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult
from ccml.models.training.evaluation import compute_metrics, metric_value
from ccml.models.training.gate import PromotionGate
from ccml.models.training.validation import validate

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RetrainOutcome:
    version: str
    promoted: bool
    reason: str
    manifest: Manifest
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """A small JSON-serialisable summary (CLI ``--json``, Lambda return value)."""
        holdout = self.manifest.evaluation.holdout
        metrics: dict[str, Any] = holdout.model_dump(mode="json")
        cv = self.manifest.evaluation.cross_validation
        if cv is not None:
            metrics["cross_validation"] = cv.model_dump(mode="json")
        promotion = self.manifest.promotion
        return {
            "version": self.version,
            "promoted": self.promoted,
            "reason": self.reason,
            "metrics": metrics,
            "champion_score": promotion.champion_score if promotion else None,
            "champion_version": promotion.champion_version if promotion else None,
            "rows_used": self.manifest.data.rows_used,
            "duplicates_dropped": self.manifest.data.duplicates_dropped,
            "seconds": self.seconds,
        }


@dataclass
class RetrainWorkflow:
    store: ModelStore
    trainer: Trainer
    schema: FeatureSchema
    gate: PromotionGate
    predictor_factory: Callable[[ModelArtifact], Predictor]
    min_rows: int = 50
    threshold: float = 0.5
    alias: str = CHAMPION

    @classmethod
    def from_settings(cls, settings: Settings, store: ModelStore, trainer: Trainer) -> RetrainWorkflow:
        # The gate scores the champion with the reference scikit-learn pipeline, whatever
        # backend serves it: the comparison is about the model, not the runtime.
        from ccml.models.serving.sklearn import SklearnPredictor

        return cls(
            store=store,
            trainer=trainer,
            schema=settings.feature_schema(),
            gate=PromotionGate(settings.promotion_metric, settings.promotion_tolerance, settings.promotion_floor),
            predictor_factory=lambda artifact: SklearnPredictor(artifact, settings.decision_threshold),
            min_rows=settings.min_rows,
            threshold=settings.decision_threshold,
        )

    def run(self, source: DataSource, *, force: bool = False) -> RetrainOutcome:
        timings: dict[str, float] = {}

        @contextmanager
        def stage(name: str) -> Iterator[None]:
            started = time.perf_counter()
            log.info("stage_started", stage=name)
            yield
            timings[name] = round(time.perf_counter() - started, 3)
            log.info("stage_finished", stage=name, seconds=timings[name])

        with stage("load"):
            dataset = source.load()
        with stage("validate"):
            table = validate(dataset, self.schema, min_rows=self.min_rows)
        # The raw table of text cells is not needed any more: free it before training (about
        # 400 MB of Python strings for 1,000,000 rows).
        del dataset
        with stage("train"):
            result = self.trainer.fit(table)
        with stage("compare"):
            decision = self._decide(result, force)
        artifact = ModelArtifact(
            result.artifact.manifest.model_copy(update={"promotion": decision}),
            result.artifact.files,
            result.artifact.pipeline,
        )
        with stage("save"):
            saved = self.store.save(artifact)
        if decision.promoted:
            with stage("promote"):
                self.store.promote(saved.id, self.alias, reason=decision.reason, forced=decision.forced)
        log.info("retrain_finished", version=saved.id, promoted=decision.promoted, reason=decision.reason)
        return RetrainOutcome(saved.id, decision.promoted, decision.reason, saved.manifest, timings)

    def _champion_score(self, result: TrainingResult) -> tuple[float | None, str | None, str]:
        """The champion's score on the challenger's holdout, or why there is none."""
        try:
            champion = self.store.load(self.alias)
        except ModelNotFoundError:
            return None, None, "no champion yet"
        except ArtifactIntegrityError as exc:
            # A champion that can never load again (tampered, or pickled by another
            # scikit-learn) cannot be compared with; any other store error may be transient
            # and propagates, so a challenger never replaces a champion it was not scored against.
            log.warning("champion_unusable", error=str(exc))
            return None, None, f"champion unusable ({exc})"
        version = champion.version
        if not champion.trained_on(self.schema):
            return None, version, f"champion {version} was trained on another feature schema"
        try:
            probabilities = self.predictor_factory(champion).predict_proba(result.holdout_features)
        except CcmlError as exc:
            log.warning("champion_unusable", version=version, error=str(exc))
            return None, version, f"champion {version} could not be scored ({exc})"
        score = metric_value(compute_metrics(result.holdout_target, probabilities, self.threshold), self.gate.metric)
        return score, version, ""

    def _decide(self, result: TrainingResult, force: bool) -> PromotionDecision:
        challenger = metric_value(result.artifact.manifest.evaluation.holdout, self.gate.metric)
        champion_score, champion_version, note = self._champion_score(result)
        decision = self.gate.decide(challenger, champion_score, champion_version)
        if note and champion_score is None:  # say why the floor, not a champion, decided
            decision = decision.model_copy(update={"reason": f"{note}; {decision.reason}"})
        if force and not decision.promoted:
            decision = decision.model_copy(
                update={"promoted": True, "forced": True, "reason": f"forced by --force; gate said: {decision.reason}"}
            )
        log.info("promotion_decided", promoted=decision.promoted, reason=decision.reason)
        return decision
