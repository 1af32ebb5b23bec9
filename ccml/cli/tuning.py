"""``ccml tune``: find the best trainer and hyper-parameters for a data set within a time budget."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ccml.cli.common import JsonOption, app, emit, load_settings, user_errors
from ccml.cli.progress import for_people, progress_display
from ccml.core.errors import ConfigError

LEADERBOARD_SHOWN = 10


@app.command()
@user_errors
def tune(
    data: Annotated[str, typer.Option(help="CSV to tune on: a path, or s3://bucket/key.")],
    budget_s: Annotated[float, typer.Option("--budget-s", min=1, help="Time budget in seconds.")] = 300.0,
    out: Annotated[
        Path | None, typer.Option(help="Write the winner's settings here (for `ccml train --settings`).")
    ] = (None),
    folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-validation folds per candidate.")] = 5,
    trainers: Annotated[
        list[str] | None, typer.Option("--trainer", help="Only these trainers (repeat); default: every registered one.")
    ] = None,
    max_candidates: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many candidates (a reproducible run).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the search and the folds (default CCML_RANDOM_STATE).")] = (
        None
    ),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the structured logs.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Cross-validate the registered trainers and their main hyper-parameters; print a leaderboard."""
    from ccml.core.components import build_data_source, build_trainer
    from ccml.core.registry import TRAINERS
    from ccml.models.training.tuning import Candidate, settings_toml
    from ccml.models.training.tuning import tune as run_tuning
    from ccml.models.training.validation import validate

    settings = load_settings()
    names = trainers or TRAINERS.names()
    for name in names:
        TRAINERS.check(name)
    seed = settings.random_state if seed is None else seed

    def build(candidate: Candidate) -> Any:
        update = {"trainer": candidate.trainer, "trainer_params": candidate.params, "random_state": seed}
        if candidate.calibration is not None:
            update["calibration"] = candidate.calibration
        chosen = settings.model_copy(update=update)
        return build_trainer(chosen)

    spaces = {name: dict(getattr(build(Candidate(name, {})), "search_space", {})) for name in names}
    people = for_people(as_json)
    with progress_display(people, verbose=verbose, log_level=settings.log_level):
        dataset = build_data_source(settings, data).load()
        table = validate(dataset, settings.feature_schema(), min_rows=settings.min_rows)
        result = run_tuning(
            table,
            build,
            spaces,
            metric=settings.promotion_metric,
            folds=folds,
            budget_s=budget_s,
            seed=seed,
            threshold=settings.decision_threshold,
            max_candidates=max_candidates,
        )
    if not result.leaderboard:
        raise ConfigError("no candidate was scored within the budget")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(settings_toml(result, source=data), "utf-8")
    document = {
        "metric": result.metric,
        "folds": result.folds,
        "seed": seed,
        "seconds": round(result.seconds, 1),
        "budget_s": budget_s,
        "candidates": len(result.leaderboard),
        "skipped": result.skipped,
        "winner": result.winner.document(),
        "leaderboard": [score.document() for score in result.leaderboard],
        "settings_file": str(out) if out else None,
    }

    def text() -> str:
        lines = [f"{'RANK':>4}  {result.metric.upper():>7}  {'± STD':>7}  {'SECONDS':>7}  TRAINER / PARAMS"]
        for rank, score in enumerate(result.leaderboard[:LEADERBOARD_SHOWN], 1):
            params = ", ".join(f"{k}={v}" for k, v in sorted(score.candidate.params.items())) or "(defaults)"
            lines.append(
                f"{rank:>4}  {score.mean:>7.4f}  {score.std:>7.4f}  {score.seconds:>7.1f}  "
                f"{score.candidate.trainer} {params}"
            )
        lines.append(
            f"{len(result.leaderboard)} candidates, {result.folds}-fold CV, {result.seconds:.0f} s "
            f"of a {budget_s:g} s budget (seed {seed})"
        )
        if out is not None:
            lines.append(f"winner's settings written to {out}: ccml train --data {data} --settings {out}")
        return "\n".join(lines)

    emit(document, as_json, text)
