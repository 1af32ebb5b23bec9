"""Write a version's evaluation report into its artifact (``report.html``), at training time.

The workflow calls ``attach_report`` once the promotion gate has decided, so the page shows the
verdict and the champion's curves on the same holdout. A report that cannot be made is logged
and noted in the manifest (``notes.report``); it never costs the version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import structlog

from ccml.core.artifact import Manifest
from ccml.core.contracts import ModelStore
from ccml.core.model_files import REPORT_FILE
from ccml.core.types import TrainingResult
from ccml.models.training.fitting import with_files
from ccml.models.training.report_inputs import ChampionScores, ReportInputs, horizon_points, permutation_importance
from ccml.models.training.report_page import render

log = structlog.get_logger(__name__)


def attach_report(
    result: TrainingResult,
    manifest: Manifest,
    champion: ChampionScores | None,
    store: ModelStore,
    alias: str,
    *,
    random_state: int = 42,
    extra_sections: Sequence[Callable[[ReportInputs], str]] = (),
) -> TrainingResult:
    """``result`` with ``manifest`` (the decided one) and the report among its files."""
    files = dict(result.artifact.files)
    notes = dict(manifest.notes)
    try:
        if result.holdout_scores is None:
            raise ValueError("the training result has no holdout scores")
        inputs = ReportInputs(
            manifest=manifest,
            target=result.holdout_target,
            scores=result.holdout_scores,
            champion=champion,
            importance=permutation_importance(
                result.model, result.holdout_features, result.holdout_target, random_state=random_state
            ),
            horizons=horizon_points(store, manifest, alias),
        )
        files[REPORT_FILE] = render(inputs, extra_sections).encode()
    except Exception as exc:  # the report's boundary: the version is worth more than its page
        log.warning("report_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        notes["report"] = f"not written: {type(exc).__name__}: {str(exc)[:300]}"
    manifest = manifest.model_copy(update={"notes": notes})
    return dataclasses.replace(result, artifact=with_files(manifest, files, getattr(result.model, "pipeline", None)))
