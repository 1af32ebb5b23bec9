"""API fuzzing: schemathesis's engine, the one ``schemathesis run --checks all`` drives (its
examples, coverage, fuzzing and stateful phases, every check), against the app ``create_app``
builds over a real local store serving a trained champion; once without an API key and once
with one. Every generated case must pass every check: no 5xx, status codes, content types,
headers and bodies as documented, valid data accepted, invalid data refused, the key enforced.

The seed is random unless SCHEMATHESIS_SEED is set; a failure message names the seed it ran with.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic

from ccml.api import create_app
from ccml.core.components import build_model_store
from ccml.core.settings import Settings
from tests.api.conftest import Models, make_settings, models  # noqa: F401  (fixtures)
from tests.reliability.figures import record, scale

# Per operation, for the fuzzing phase; the coverage phase adds its own boundary cases on top.
# The operations without parameters (GET /health, ...) have one distinct case each.
MAX_EXAMPLES = scale(20, 500)
KEY = "fuzz-key-0123456789"
MODES: dict[str, str | None] = {"open": None, "api-key": KEY}


@dataclass
class FuzzRun:
    """What one engine run did, from its own events and the app's request log."""

    seed: int
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    per_operation: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    crashes: list[MutableMapping[str, Any]] = field(default_factory=list)

    def report(self) -> str:
        return "\n".join([f"seed {self.seed}", *self.failures, *self.errors, *map(str, self.crashes)])


def _config(seed: int, key: str | None) -> schemathesis.Config:
    config = schemathesis.Config.from_dict(
        {
            "seed": seed,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "cache": {"enabled": False},  # each run finds everything itself
            **({"headers": {"X-API-Key": key}} if key else {}),
        }
    )
    config.projects.override.checks.update(included_check_names=["all"])  # --checks all
    return config


def _describe(statistic: Statistic) -> list[str]:
    return [
        f"{label}: {failure.title}: {failure.message} (status {group.response.status_code if group.response else '-'})"
        for label, grouped in statistic.failures.items()
        for group in grouped.values()
        for failure in group.failures
    ]


def fuzz(app: FastAPI, key: str | None, seed: int) -> FuzzRun:
    run = FuzzRun(seed)
    statistic = Statistic()
    # The lifespan loads the champion; capture_logs holds the app's request log lines.
    with TestClient(app), structlog.testing.capture_logs() as logs:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(seed, key))
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                statistic.on_scenario_finished(event.recorder)
                run.per_operation.update(case.value.operation.label for case in event.recorder.cases.values())
            elif isinstance(event, events.NonFatalError):
                run.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
            elif isinstance(event, events.FatalError):
                run.errors.append(f"fatal: {event.exception!r}")
    run.cases = statistic.total_cases
    run.failures = _describe(statistic)
    for line in logs:
        if line["event"] == "request_finished":
            run.statuses[(line["route"], line["status"])] += 1
        elif line["log_level"] in ("error", "critical"):
            run.crashes.append(line)
    return run


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_schemathesis_finds_no_failure(
    mode: str,
    tmp_path: Path,
    make_settings: Callable[..., Settings],  # noqa: F811  (the fixture imported above)
    models: Models,  # noqa: F811
) -> None:
    key = MODES[mode]
    settings = make_settings(tmp_path / "home", api_key=key)  # the default body limit and max_batch
    models.publish(build_model_store(settings))
    seed = int(os.environ.get("SCHEMATHESIS_SEED") or random.getrandbits(64))

    app = create_app(settings)
    paths = app.openapi()["paths"]
    documented = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
    protected = {path for path, item in paths.items() if any("security" in operation for operation in item.values())}
    started = time.perf_counter()
    run = fuzz(app, key, seed)
    seconds = round(time.perf_counter() - started, 1)

    record("api_fuzz", mode, cases=run.cases, failures=len(run.failures) + len(run.errors), seconds=seconds, seed=seed)
    assert not run.failures, run.report()
    assert not run.errors, run.report()
    assert not run.crashes, run.report()
    assert set(run.per_operation) == documented, run.per_operation  # every documented operation was fuzzed
    assert min(run.per_operation["POST /predict"], run.per_operation["POST /predict/batch"]) >= MAX_EXAMPLES
    assert not [(route, status) for route, status in run.statuses if status >= 500], run.statuses
    refused = {route for route, status in run.statuses if status == 401}
    if key is None:
        assert not refused
    else:
        # ignored_auth sent every protected operation's cases without the key, and each was refused.
        assert refused == protected, run.statuses
        assert {"/predict", "/predict/batch", "/model", "/drift", "/metrics", "/admin/reload"} <= protected
