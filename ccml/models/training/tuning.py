"""Find the best trainer and hyper-parameters within a time budget (``ccml tune``).

Every candidate is scored by the same stratified k-fold cross-validation ``ccml train --cv``
runs (``ccml.models.training.evaluation.cross_validate``), on the promotion metric. Each
trainer's defaults come first, so the winner is never worse than what ``ccml train`` does
today; then candidates are drawn from each trainer's ``search_space`` in an order fixed by
the seed, round-robin over the trainers, until the budget would be exceeded. The same seed
gives the same candidates in the same order and the same scores (each fit is seeded too);
how far down that list a budget reaches depends on the machine, so ``max_candidates`` pins
it for a fully reproducible run.

Calibration is searched too, where it can matter: right after the defaults come each trainer's
defaults calibrated (``sigmoid``, ``isotonic``), unless the metric only ranks students (ROC AUC,
PR AUC), which a monotone map cannot improve.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd
import structlog

from ccml.core.contracts import FittedModel, Labels, Trainer
from ccml.core.types import ValidatedTable
from ccml.models.training.evaluation import HIGHER_IS_BETTER, cross_validate

log = structlog.get_logger(__name__)

# Candidates drawn per trainer at most: enough for the spaces of the built-in trainers.
MAX_DRAWS: Final = 200
CALIBRATIONS: Final = ("sigmoid", "isotonic")
# Metrics of the order of the students only: calibration cannot raise them.
RANKING_METRICS: Final = frozenset({"roc_auc", "pr_auc"})


@dataclass(frozen=True)
class Candidate:
    """One trainer with its parameters (the user's: the trainer adds its own defaults) and, when
    set, a calibration (else the configured ``CCML_CALIBRATION``)."""

    trainer: str
    params: dict[str, Any]
    calibration: str | None = None

    def key(self) -> str:
        """A stable text form (for de-duplication and display)."""
        calibrated = f" calibration={self.calibration}" if self.calibration else ""
        return f"{self.trainer} {json.dumps(self.params, sort_keys=True)}{calibrated}"


@dataclass(frozen=True)
class Score:
    """A candidate's cross-validated score: mean and spread over the folds, and the seconds it took."""

    candidate: Candidate
    mean: float
    std: float
    seconds: float

    def document(self) -> dict[str, Any]:
        """JSON-ready form (``ccml tune --json``)."""
        return {
            "trainer": self.candidate.trainer,
            "params": self.candidate.params,
            **({"calibration": self.candidate.calibration} if self.candidate.calibration else {}),
            "mean": self.mean,
            "std": self.std,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class TuningResult:
    """Every candidate scored, best first, and what the search covered."""

    metric: str
    folds: int
    leaderboard: list[Score]
    seconds: float
    budget_s: float
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def winner(self) -> Score:
        """The best candidate."""
        return self.leaderboard[0]


def candidates(
    spaces: dict[str, dict[str, list[Any]]], seed: int, calibrations: Mapping[str, Sequence[str]] | None = None
) -> list[Candidate]:
    """Each trainer's defaults, then its defaults under each of its ``calibrations``, then draws from
    its space, round-robin over trainers, in an order fixed by ``seed``."""
    rng = random.Random(seed)
    per_trainer: list[list[Candidate]] = []
    for trainer, space in spaces.items():
        names = sorted(space)
        grid = [dict(zip(names, values, strict=True)) for values in itertools.product(*(space[n] for n in names))]
        rng.shuffle(grid)
        calibrated = [Candidate(trainer, {}, calibration) for calibration in (calibrations or {}).get(trainer, ())]
        per_trainer.append([Candidate(trainer, {}), *calibrated] + [Candidate(trainer, p) for p in grid[:MAX_DRAWS]])
    ordered: list[Candidate] = []
    seen: set[str] = set()
    for group in itertools.zip_longest(*per_trainer):
        for candidate in group:
            if candidate is not None and candidate.key() not in seen:
                seen.add(candidate.key())
                ordered.append(candidate)
    return ordered


def tune(
    table: ValidatedTable,
    build: Callable[[Candidate], Trainer],
    spaces: dict[str, dict[str, list[Any]]],
    *,
    metric: str = "roc_auc",
    folds: int = 5,
    budget_s: float = 300.0,
    seed: int = 42,
    threshold: float = 0.5,
    max_candidates: int | None = None,
    progress: Callable[[int, Score], None] | None = None,
) -> TuningResult:
    """Cross-validate candidates until ``budget_s`` would be exceeded; return the leaderboard, best first.

    A candidate starts only if the time spent plus the slowest time of its trainer so far fits
    in the budget (the first of each trainer always runs, so every trainer's defaults are scored).
    """
    started = time.perf_counter()
    slowest: dict[str, float] = {}
    scores: list[Score] = []
    calibrations = {
        name: CALIBRATIONS
        for name in spaces
        # A trainer that takes CCML_CALIBRATION (the built-in ones); a plugin's would score the same twice.
        if metric not in RANKING_METRICS and hasattr(build(Candidate(name, {})), "calibration")
    }
    queue: Sequence[Candidate] = candidates(spaces, seed, calibrations)
    if max_candidates is not None:
        queue = queue[:max_candidates]
    skipped = 0
    for candidate in queue:
        elapsed = time.perf_counter() - started
        if candidate.trainer in slowest and elapsed + slowest[candidate.trainer] > budget_s:
            skipped += 1
            continue
        trainer = build(candidate)
        began = time.perf_counter()

        def fit(features: pd.DataFrame, target: Labels, trainer: Trainer = trainer) -> FittedModel:
            return trainer.fit(features, target, table.schema)

        cv = cross_validate(
            fit,
            table.features,
            table.target,
            folds=folds,
            random_state=seed,
            threshold=threshold,
        )
        seconds = time.perf_counter() - began
        slowest[candidate.trainer] = max(seconds, slowest.get(candidate.trainer, 0.0))
        score = Score(candidate, cv.mean[metric], cv.std[metric], seconds)
        scores.append(score)
        log.info(
            "tune_candidate_scored",
            trainer=candidate.trainer,
            params=candidate.params,
            mean=round(score.mean, 4),
            std=round(score.std, 4),
            seconds=round(seconds, 2),
        )
        if progress is not None:
            progress(len(scores), score)
    sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
    # Ties go to the earlier candidate (defaults come first); never to the faster one, which
    # would make the ranking depend on the machine's load.
    order = sorted(range(len(scores)), key=lambda i: (sign * scores[i].mean, i))
    result = TuningResult(
        metric, folds, [scores[i] for i in order], time.perf_counter() - started, budget_s, skipped=skipped
    )
    log.info("tune_finished", candidates=len(scores), skipped=skipped, seconds=round(result.seconds, 1))
    return result


def settings_toml(result: TuningResult, *, source: str) -> str:
    """The winner as a settings file ``ccml train --settings FILE`` reads (keys are settings names).

    ``trainer_params`` is written as the JSON text ``CCML_TRAINER_PARAMS`` takes: TOML has no
    null, and ``max_depth = None`` is a real choice.
    """
    winner = result.winner
    params = json.dumps(winner.candidate.params, sort_keys=True)
    quoted = f"'{params}'" if "'" not in params else json.dumps(params)  # a TOML literal string if it can be
    return "\n".join(
        [
            f"# Written by `ccml tune` on {source}: {result.folds}-fold {result.metric} "
            f"{winner.mean:.4f} ± {winner.std:.4f}, best of {len(result.leaderboard)} candidates "
            f"in {result.seconds:.0f} s.",
            "# Use it with: ccml train --data FILE --settings THIS_FILE",
            f"trainer = {json.dumps(winner.candidate.trainer)}",
            f"trainer_params = {quoted}",
            *([f"calibration = {json.dumps(winner.candidate.calibration)}"] if winner.candidate.calibration else []),
            "",
        ]
    )
