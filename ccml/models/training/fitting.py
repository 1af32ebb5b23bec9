"""Train and evaluate one model, whatever the trainer: split, cross-validate, fit, score, manifest.

The trainer only fits (``Trainer.fit``); everything that makes the result comparable between
trainers and versions happens here, the same way for all of them: the stratified holdout the
promotion gate scores the champion on, k-fold cross-validation by fitting again per fold, the
holdout metrics, and the manifest. Export for the serving backend is the next step
(``ccml.models.training.export.export_for_serving``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from ccml.core.artifact import ArtifactFile, DataInfo, Evaluation, Manifest, ModelArtifact, sha256_hex
from ccml.core.contracts import Trainer
from ccml.core.decision import DecisionRule
from ccml.core.settings import ThresholdPolicy
from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.training.evaluation import compute_metrics, cross_validate, holdout_split, reliability_curve
from ccml.models.training.explainer_export import training_input_means
from ccml.models.training.fairness import FairnessPlan, evaluate_fairness
from ccml.models.training.reference import build_reference
from ccml.models.training.thresholds import THRESHOLD_FOLDS, choose_threshold, out_of_fold_scores

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EvaluationPlan:
    """How a model is evaluated: the holdout, the folds, the seed and the decision threshold
    (``threshold`` for the fixed policy, else chosen by ``threshold_policy`` and its target)."""

    holdout_fraction: float = 0.2
    cv_folds: int = 0
    random_state: int = 42
    threshold: float = 0.5
    threshold_policy: ThresholdPolicy = "fixed"
    threshold_target: float | None = None
    fairness: FairnessPlan = field(default_factory=FairnessPlan)


def with_files(manifest: Manifest, files: Mapping[str, bytes], pipeline: Any = None) -> ModelArtifact:
    """An artifact of ``files`` whose manifest records each file's size and sha256 (``pipeline``:
    the fitted scikit-learn pipeline in memory, if any, so nothing is deserialized again)."""
    entries = {name: ArtifactFile(sha256=sha256_hex(data), size=len(data)) for name, data in files.items()}
    return ModelArtifact(manifest.model_copy(update={"files": entries}), files, pipeline)


def train_and_evaluate(trainer: Trainer, table: ValidatedTable, plan: EvaluationPlan | None = None) -> TrainingResult:
    """Fit ``trainer`` on the training part of ``table`` and score it on the holdout.

    The model is fitted on the training part only, so its holdout scores are honest and the
    promotion gate can score the current champion on the very same rows.
    """
    plan = plan or EvaluationPlan()
    train, holdout, spec = holdout_split(table.rows, table.target, plan.holdout_fraction, plan.random_state)
    cv = None
    if plan.cv_folds:
        started = time.perf_counter()
        cv = cross_validate(
            lambda features, target: trainer.fit(features, target, table.schema),
            table.features,
            table.target,
            folds=plan.cv_folds,
            random_state=plan.random_state,
            threshold=plan.threshold,
            progress=lambda fold, m: log.info("cv_fold_scored", fold=fold, of=plan.cv_folds, roc_auc=m.roc_auc),
        )
        log.info(
            "cv_finished",
            folds=plan.cv_folds,
            roc_auc=round(cv.mean["roc_auc"], 4),
            seconds=round(time.perf_counter() - started, 2),
        )
    started = time.perf_counter()
    train_features = table.features.iloc[train].reset_index(drop=True)
    model = trainer.fit(train_features, table.target[train], table.schema)
    log.info("model_fitted", trainer=trainer.name, rows=len(train), seconds=round(time.perf_counter() - started, 2))
    means = training_input_means(model, train_features)
    reference = build_reference(table.schema, train_features)
    del train_features
    holdout_features = table.features.iloc[holdout].reset_index(drop=True)
    holdout_target = table.target[holdout]
    scores = np.asarray(model.predict_proba(holdout_features), dtype=np.float64)
    decision = _decision_rule(trainer, table, train, plan)
    holdout_groups = None if table.groups is None else table.groups.iloc[holdout].reset_index(drop=True)
    fairness = evaluate_fairness(
        table.schema,
        holdout_groups,
        table.groups_absent,
        holdout_target,
        scores,
        threshold=decision.threshold,
        plan=plan.fairness,
        random_state=plan.random_state,
    )
    manifest = Manifest(
        trainer=trainer.name,
        params=model.params,
        schema_=table.schema.model_dump(mode="json"),
        schema_fingerprint=table.schema.fingerprint(),
        data=DataInfo(
            fingerprint=table.fingerprint,
            source=table.source,
            rows_read=table.rows_read,
            duplicates_dropped=table.duplicates_dropped,
            rows_used=table.rows,
            positives=int(np.sum(table.target)),
            columns_ignored=list(table.columns_ignored),
            missing_values={str(k): int(v) for k, v in table.features.isna().sum().items() if v},
        ),
        holdout=spec,
        evaluation=Evaluation(
            holdout=compute_metrics(holdout_target, scores, decision.threshold),
            cross_validation=cv,
            reliability=reliability_curve(holdout_target, scores),
            fairness=fairness,
        ),
        calibration=getattr(model, "calibration", None),
        decision=decision,
        reference=reference,
    )
    artifact = with_files(manifest, model.files(), getattr(model, "pipeline", None))
    return TrainingResult(
        artifact,
        holdout_features,
        holdout_target,
        model=model,
        holdout_scores=scores,
        input_means=means,
        holdout_groups=holdout_groups,
    )


def _decision_rule(trainer: Trainer, table: ValidatedTable, train: Any, plan: EvaluationPlan) -> DecisionRule:
    """The plan's threshold policy applied to out-of-fold scores of the training part (no refit for ``fixed``)."""
    if plan.threshold_policy == "fixed":
        return DecisionRule(policy="fixed", threshold=plan.threshold, chosen_on="CCML_DECISION_THRESHOLD")
    features = table.features.iloc[train].reset_index(drop=True)
    target = table.target[train]
    started = time.perf_counter()
    scores = out_of_fold_scores(
        lambda part, labels: trainer.fit(part, labels, table.schema), features, target, random_state=plan.random_state
    )
    rule = choose_threshold(
        plan.threshold_policy,
        plan.threshold_target,
        plan.threshold,
        scores,
        target,
        f"out-of-fold scores of the {len(target):,} training rows ({THRESHOLD_FOLDS} folds)",
    )
    log.info("threshold_chosen", **rule.model_dump(), seconds=round(time.perf_counter() - started, 2))
    return rule
