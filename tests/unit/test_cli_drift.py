"""``ccml drift`` through the installed console script: a CSV against a version's training reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ccml.core.artifact import ModelArtifact
from ccml.core.components import build_model_store, build_trainer
from ccml.core.schema import load_schema
from ccml.core.settings import Settings
from ccml.models.training.synthetic import generate
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.local import LocalDataSource
from tests.helpers import FAST_PARAMS, shifted_sample

CCML = Path(sys.executable).parent / "ccml"
pytestmark = pytest.mark.skipif(not CCML.exists(), reason=f"console script not installed at {CCML}")
SCHEMA = load_schema()


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    """A champion trained on 1,000 synthetic rows and a copy of it without a reference; ``ccml drift``
    run once per case, side by side."""
    root = tmp_path_factory.mktemp("drift-cli")
    settings = Settings(home=root / "home", trainer_params=FAST_PARAMS["random_forest"])
    generate(SCHEMA, 1000, seed=3).to_csv(root / "train.csv", index=False)
    store = build_model_store(settings)
    outcome = RetrainWorkflow.from_settings(settings, store, build_trainer(settings)).run(
        LocalDataSource(root / "train.csv")
    )
    artifact = store.load(outcome.version)
    old = store.save(ModelArtifact(artifact.manifest.model_copy(update={"reference": None}), artifact.files)).id
    fresh = generate(SCHEMA, 2000, seed=17)
    fresh.to_csv(root / "fresh.csv", index=False)
    shifted_sample(SCHEMA, fresh).to_csv(root / "shifted.csv", index=False)
    bad = fresh.head(600).astype(object)
    bad.loc[3, "QuizScores"] = 1000  # out of the schema's range
    bad.to_csv(root / "bad.csv", index=False)
    cases: dict[str, tuple[str, ...]] = {
        "fresh": ("--data", str(root / "fresh.csv"), "--json"),
        "shifted": ("--data", str(root / "shifted.csv"), "--json"),
        "shifted table": ("--data", str(root / "shifted.csv"), "--model", outcome.version),
        "no reference": ("--data", str(root / "fresh.csv"), "--model", old),
        "invalid row": ("--data", str(root / "bad.csv")),
        "absent file": ("--data", str(root / "absent.csv")),
    }
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CCML_", "AWS_"))}
    env.update(CCML_HOME=str(settings.home), CCML_LOG_FORMAT="json")

    def run(args: tuple[str, ...]) -> Result:
        done = subprocess.run(
            [str(CCML), "drift", *args], env=env, cwd=root, capture_output=True, text=True, timeout=120, check=False
        )
        return Result(done.returncode, done.stdout, done.stderr)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(cases, pool.map(run, cases.values()), strict=True))


def _json(result: Result) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_a_fresh_sample_is_ok_and_exits_0(runs: dict[str, Result]) -> None:
    result = runs["fresh"]
    report = _json(result)
    assert result.code == 0, result.stderr
    assert (report["status"], report["rows"]) == ("ok", 2000)
    assert {f["status"] for f in report["features"]} == {"ok"}


def test_a_shifted_sample_drifts_and_exits_3(runs: dict[str, Result]) -> None:
    result = runs["shifted"]
    report = _json(result)
    assert result.code == 3
    assert report["status"] == "drift"
    assert {f["feature"] for f in report["features"] if f["status"] == "drift"} == {
        "time_spent_on_course",
        "course_category",
    }


def test_the_table_names_each_feature_and_the_verdict(runs: dict[str, Result]) -> None:
    result = runs["shifted table"]
    lines = result.stdout.splitlines()
    assert result.code == 3
    assert len(lines) == 1 + len(SCHEMA.features) + 1
    assert lines[1].split()[0] == SCHEMA.features[0].name
    assert lines[-1].startswith("drift: 2,000 rows of ")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no reference", "has no reference distribution"),
        ("invalid row", "record 4: quiz_scores"),
        ("absent file", "cannot read"),
    ],
)
def test_user_errors_exit_1_with_one_message(runs: dict[str, Result], case: str, message: str) -> None:
    result = runs[case]
    assert result.code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert message in result.stderr
