"""The retraining workflow: load -> validate -> train and evaluate -> export for serving ->
check it serves -> compare -> write the report -> save -> promote.

One object, used by ``ccml train``, ``ccml retrain`` and the Lambda handler alike. The store
is touched only after validation and training succeeded, and the champion alias moves last,
so any failure before that leaves the serving model as it was. A version the configured
serving backend cannot serve (or serves differently) is saved but never promoted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import structlog

from ccml.core.artifact import Manifest, ModelArtifact, PromotionDecision
from ccml.core.contracts import CHAMPION, DataSource, ModelStore, Predictor, Trainer
from ccml.core.decision import served_threshold
from ccml.core.errors import ArtifactIntegrityError, CcmlError, ModelNotFoundError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult
from ccml.models.training.evaluation import compute_metrics, metric_value
from ccml.models.training.export import export_for_serving
from ccml.models.training.fitting import EvaluationPlan, train_and_evaluate
from ccml.models.training.gate import PromotionGate
from ccml.models.training.report import attach_report
from ccml.models.training.report_inputs import ChampionScores
from ccml.models.training.thresholds import check_policy
from ccml.models.training.validation import validate

log = structlog.get_logger(__name__)

# The serving check scores this many holdout rows with the configured backend; ONNX's float32
# trees differ from scikit-learn's float64 ones by about 1e-7.
SERVING_CHECK_ROWS: Final = 2_000
SERVING_TOLERANCE: Final = 1e-4


@dataclass(frozen=True)
class RetrainOutcome:
    """What one retrain did: the version it saved, whether it was promoted and why, and the stage timings."""

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
            "columns_ignored": list(self.manifest.data.columns_ignored),
            "seconds": self.seconds,
        }


@dataclass
class RetrainWorkflow:
    """Load -> validate -> train and evaluate -> export for serving -> check it serves ->
    compare with the champion -> save -> promote."""

    store: ModelStore
    trainer: Trainer
    schema: FeatureSchema
    gate: PromotionGate
    # The configured serving backend: the export is made for it, checked with it, and the
    # champion is scored with it, so what is promoted is what the API will serve.
    predictor_factory: Callable[[ModelArtifact], Predictor]
    serving_backend: str = "onnx"
    evaluation: EvaluationPlan = field(default_factory=EvaluationPlan)
    min_rows: int = 50
    alias: str = CHAMPION

    @property
    def threshold(self) -> float:
        """The decision threshold the evaluation uses."""
        return self.evaluation.threshold

    @classmethod
    def from_settings(cls, settings: Settings, store: ModelStore, trainer: Trainer) -> RetrainWorkflow:
        """The workflow of ``ccml train``, ``ccml retrain`` and the Lambda, from settings."""
        from ccml.core.components import build_predictor

        check_policy(settings.threshold_policy, settings.threshold_target)  # before any data is read
        return cls(
            store=store,
            trainer=trainer,
            schema=settings.feature_schema(),
            gate=PromotionGate(settings.promotion_metric, settings.promotion_tolerance, settings.promotion_floor),
            predictor_factory=lambda artifact: build_predictor(settings, artifact),
            serving_backend=settings.predictor,
            evaluation=EvaluationPlan(
                holdout_fraction=settings.holdout_fraction,
                cv_folds=settings.cv_folds,
                random_state=settings.random_state,
                threshold=settings.decision_threshold,
                threshold_policy=settings.threshold_policy,
                threshold_target=settings.threshold_target,
            ),
            min_rows=settings.min_rows,
        )

    def run(self, source: DataSource, *, force: bool = False) -> RetrainOutcome:
        """Retrain on ``source``; the store is written only after everything before succeeded."""
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
            result = train_and_evaluate(self.trainer, table, self.evaluation)
        with stage("export"):
            result = export_for_serving(self.serving_backend, result)
            unservable = self._unservable(result)
        with stage("compare"):
            champion, champion_version, note = self._champion(result)
            decision = self._decide(result, force, unservable, champion, champion_version, note)
        # The store writes the manifest and the files; the fitted object in memory is not saved.
        # The id is reserved now so the report can name the version it describes.
        reserved = self.store.new_version_id()
        manifest = result.artifact.manifest.model_copy(update={"promotion": decision, "version": reserved})
        with stage("report"):
            result = attach_report(
                result, manifest, champion, self.store, self.alias, random_state=self.evaluation.random_state
            )
        artifact = ModelArtifact(result.artifact.manifest, result.artifact.files)
        with stage("save"):
            saved = self.store.save(artifact, reserved)
        if saved.id != reserved:  # another save took the id in the meantime (the report names the reserved one)
            log.warning("reserved_version_taken", reserved=reserved, version=saved.id)
        if decision.promoted:
            with stage("promote"):
                self.store.promote(saved.id, self.alias, reason=decision.reason, forced=decision.forced)
        log.info("retrain_finished", version=saved.id, promoted=decision.promoted, reason=decision.reason)
        return RetrainOutcome(saved.id, decision.promoted, decision.reason, saved.manifest, timings)

    def _unservable(self, result: TrainingResult) -> str | None:
        """Why the configured serving backend cannot serve this version as trained, or None.

        The backend loads the artifact as the API will and scores (a sample of) the holdout;
        its probabilities must match the trained model's.
        """
        rows = result.holdout_features[:SERVING_CHECK_ROWS]
        try:
            served = self.predictor_factory(result.artifact).predict_proba(rows)
        except CcmlError as exc:
            return f"the {self.serving_backend} backend cannot serve it: {exc}"
        if result.holdout_scores is not None:
            expected = result.holdout_scores[: len(rows)]
        else:  # a result made without train_and_evaluate: ask the trained model itself
            expected = result.model.predict_proba(rows)
        difference = float(np.max(np.abs(served - expected))) if len(rows) else 0.0
        if difference > SERVING_TOLERANCE:
            return f"the {self.serving_backend} backend answers differently (max |p diff| {difference:.1e})"
        return None

    def _champion(self, result: TrainingResult) -> tuple[ChampionScores | None, str | None, str]:
        """The champion's scores on the challenger's holdout and its version, or None and why there are none."""
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
        version = str(champion.version)
        if not champion.trained_on(self.schema):
            return None, version, f"champion {version} was trained on another feature schema"
        try:
            probabilities = self.predictor_factory(champion).predict_proba(result.holdout_features)
        except CcmlError as exc:
            log.warning("champion_unusable", version=version, error=str(exc))
            return None, version, f"champion {version} could not be scored ({exc})"
        threshold = served_threshold(champion.manifest.decision, self.threshold)
        metrics = compute_metrics(result.holdout_target, probabilities, threshold)
        return ChampionScores(version, probabilities, metrics), version, ""

    def _decide(
        self,
        result: TrainingResult,
        force: bool,
        unservable: str | None = None,
        champion: ChampionScores | None = None,
        champion_version: str | None = None,
        note: str = "",
    ) -> PromotionDecision:
        challenger = metric_value(result.artifact.manifest.evaluation.holdout, self.gate.metric)
        champion_score = metric_value(champion.metrics, self.gate.metric) if champion is not None else None
        decision = self.gate.decide(challenger, champion_score, champion_version)
        if note and champion_score is None:  # say why the floor, not a champion, decided
            decision = decision.model_copy(update={"reason": f"{note}; {decision.reason}"})
        if unservable is not None:
            # Not even --force: the API would refuse it and keep serving the old champion.
            decision = decision.model_copy(update={"promoted": False, "reason": f"not servable: {unservable}"})
        elif force and not decision.promoted:
            decision = decision.model_copy(
                update={"promoted": True, "forced": True, "reason": f"forced by --force; gate said: {decision.reason}"}
            )
        log.info("promotion_decided", promoted=decision.promoted, reason=decision.reason)
        return decision
