"""The ``ccml`` command through its installed console script, as a user or a script runs it.

Starting the CLI costs about a second of imports, so commands that only read the store run
once per module, side by side, and several tests assert on each result. Commands that move
aliases run on a private copy of the trained home.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ccml.core.registry import TRAINERS
from ccml.core.schema import load_schema
from ccml.models.training.synthetic import generate
from tests.helpers import tree_digest

CCML = Path(sys.executable).parent / "ccml"
pytestmark = pytest.mark.skipif(not CCML.exists(), reason=f"console script not installed at {CCML}")

SAMPLE_ROWS = 600
SAMPLE_SEED = 3
SCHEMA = load_schema()
NUMERIC = next(f for f in SCHEMA.features if f.type == "numeric")
CATEGORICAL = next(f for f in SCHEMA.features if f.type == "categorical")
INVALID_CASES = ["missing column", "text in numeric column", "unknown category", "empty file", "only one class"]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as exactly one JSON document (json.loads refuses trailing data)."""
        return json.loads(self.stdout)

    @property
    def messages(self) -> list[str]:
        """stderr lines that are not structured log lines."""
        return [line for line in self.stderr.splitlines() if line.strip() and not _is_log_line(line)]


def _is_log_line(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


@dataclass(frozen=True)
class Cli:
    """Runs ``ccml`` with CCML_HOME at ``home`` and nothing from the developer's environment."""

    cwd: Path
    home: Path

    def __call__(self, *args: str, **extra_env: str) -> Result:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CCML_", "AWS_"))}
        env.update(
            CCML_HOME=str(self.home),
            CCML_MIN_ROWS="50",
            CCML_TRAINER_PARAMS='{"n_estimators": 20, "n_jobs": 1}',
            CCML_LOG_FORMAT="json",
            OMP_NUM_THREADS="1",
        )
        env.update(extra_env)
        done = subprocess.run(
            [str(CCML), *args], cwd=self.cwd, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def many(self, commands: Mapping[str, tuple[tuple[str, ...], dict[str, str]]]) -> dict[str, Result]:
        """Run independent commands side by side: name -> (args, extra environment)."""
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            futures = {name: pool.submit(self, *args, **env) for name, (args, env) in commands.items()}
            return {name: future.result() for name, future in futures.items()}


def _assert_user_error(result: Result, *, one_line: bool = True) -> str:
    assert result.code != 0
    assert "Traceback" not in result.stderr
    assert result.messages, result.stderr
    assert result.messages[0].startswith("error: ")
    if one_line:
        assert len(result.messages) == 1, result.messages
    return "\n".join(result.messages)


def _complete_rows(path: Path, n: int) -> pd.DataFrame:
    """The first ``n`` sample rows without missing cells."""
    return pd.read_csv(path).dropna().head(n)


@dataclass(frozen=True)
class Trained:
    root: Path
    home: Path
    sample: Path
    first: dict[str, Any]
    second: Result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A home with two versions trained by the CLI on its own sample (the second is champion)."""
    root = tmp_path_factory.mktemp("cli")
    cli = Cli(root, root / "home")
    sample = root / "data" / "sample.csv"
    sampled = cli("data", "sample", "--rows", str(SAMPLE_ROWS), "--seed", str(SAMPLE_SEED), "--out", str(sample))
    assert sampled.code == 0, sampled.stderr
    first = cli("train", "--data", str(sample), "--json")
    assert first.code == 0, first.stderr
    second = cli("train", "--data", str(sample), "--json")
    assert second.code == 0, second.stderr
    return Trained(root, root / "home", sample, first.json(), second)


@pytest.fixture(scope="module")
def first_version(trained: Trained) -> str:
    return str(trained.first["version"])


@pytest.fixture(scope="module")
def second_version(trained: Trained) -> str:
    return str(trained.second.json()["version"])


@pytest.fixture(scope="module")
def reads(trained: Trained, first_version: str) -> dict[str, Result]:
    """Every command that leaves the store alone, run once against the trained home."""
    work = trained.root / "reads"
    work.mkdir()
    csv = work / "students.csv"
    _complete_rows(trained.sample, 5).to_csv(csv, index=False)
    listed = _complete_rows(trained.sample, 3)
    records = [{f.name: row[f.column] for f in SCHEMA.features} for row in listed.to_dict(orient="records")]
    records = [
        {k: (int(v) if k != NUMERIC.name and isinstance(v, float) else v) for k, v in r.items()} for r in records
    ]
    bad_record = {**SCHEMA.example_record(), NUMERIC.name: "lots"}
    gappy_csv = work / "gappy.csv"
    gappy = _complete_rows(trained.sample, 3).astype(object)
    gappy.iloc[0, gappy.columns.get_loc(NUMERIC.column)] = None  # an empty cell, imputed by the pipeline
    gappy.to_csv(gappy_csv, index=False)
    broken_csv = work / "broken.csv"
    broken_csv.write_text('a,b\n1,2\n"never closed\n')
    example = json.dumps(SCHEMA.example_record())
    cli = Cli(work, trained.home)
    return cli.many(
        {
            "list json": (("models", "list", "--json"), {}),
            "show version": (("models", "show", first_version), {}),
            "show unknown": (("models", "show", "20990101T000000.000000Z"), {}),
            "fairness": (("models", "fairness", first_version), {}),
            "fairness json": (("models", "fairness", "--json"), {}),
            "predict object": (("predict", example, "--json"), {}),
            "predict list": (("predict", json.dumps(records), "--model", first_version, "--json"), {}),
            "predict csv": (("predict", str(csv), "--limit", "4", "--json"), {}),
            "predict gappy csv": (("predict", str(gappy_csv), "--json"), {}),
            "predict explained": (("predict", str(gappy_csv), "--explain", "--top", "2", "--json"), {}),
            "predict explained csv": (
                ("predict", str(csv), "--explain", "--out", str(work / "explained.csv")),
                {"CCML_EXPLAIN_TOP": "3"},
            ),
            "predict invalid": (("predict", json.dumps(bad_record)), {}),
            "predict malformed": (("predict", "{not json"), {}),
            "train missing file": (("train", "--data", str(work / "absent.csv")), {}),
            "train broken csv": (("train", "--data", str(broken_csv)), {}),
            "unknown trainer": (("train", "--data", str(trained.sample)), {"CCML_TRAINER": "xgboost"}),
            "empty predict": (("predict", example), {"CCML_HOME": str(work / "empty-home")}),
            "config": (("config", "--json"), {"CCML_SIGNING_KEY": "sign-secret-123", "CCML_API_KEY": "api-secret-456"}),
        }
    )


# -- data sample ---------------------------------------------------------------------------
def test_data_sample_writes_the_seeded_synthetic_file(trained: Trained) -> None:
    written = pd.read_csv(trained.sample)
    features = [f.column for f in SCHEMA.features]
    assert list(written.columns) == [*SCHEMA.id_columns, *features, *SCHEMA.group_columns, SCHEMA.target.column]
    assert len(written) == SAMPLE_ROWS
    assert trained.sample.read_text() == generate(SCHEMA, SAMPLE_ROWS, SAMPLE_SEED).to_csv(index=False)


# -- train ---------------------------------------------------------------------------------
def test_train_json_prints_one_document_with_version_promotion_and_metrics(trained: Trained) -> None:
    for summary in (trained.first, trained.second.json()):
        assert isinstance(summary["version"], str)
        assert isinstance(summary["promoted"], bool)
        assert isinstance(summary["reason"], str)
        assert 0.5 < summary["metrics"]["roc_auc"] <= 1.0
    assert trained.first["promoted"]


def test_retraining_on_the_same_data_passes_the_gate_against_the_first(trained: Trained, first_version: str) -> None:
    second = trained.second.json()
    assert second["promoted"]
    assert second["champion_version"] == first_version
    assert second["champion_score"] == second["metrics"]["roc_auc"]


def test_train_logs_stage_timings_to_stderr(trained: Trained) -> None:
    events = [json.loads(line) for line in trained.second.stderr.splitlines() if _is_log_line(line)]
    finished = {e["stage"]: e["seconds"] for e in events if e.get("event") == "stage_finished"}
    assert {"load", "validate", "train", "compare", "save", "promote"} <= set(finished)
    assert all(seconds >= 0 for seconds in finished.values())


# -- models (read-only) --------------------------------------------------------------------
def test_models_list_json_lists_versions_with_aliases_metrics_and_time(
    reads: dict[str, Result], first_version: str, second_version: str
) -> None:
    listing = reads["list json"].json()
    assert [v["version"] for v in listing] == [first_version, second_version]
    for entry in listing:
        assert isinstance(entry["aliases"], list)
        assert 0.5 < entry["metrics"]["roc_auc"] <= 1.0
        assert entry["created_at"]
    assert [entry["aliases"] for entry in listing] == [[], ["champion"]]


def test_models_show_prints_the_manifest_of_a_version(reads: dict[str, Result], first_version: str) -> None:
    manifest = reads["show version"].json()
    assert manifest["version"] == first_version
    assert manifest["files"]
    assert manifest["promotion"]["promoted"]
    assert manifest["data"]["rows_used"] == SAMPLE_ROWS


def test_models_show_and_fairness_print_the_fairness_report_and_its_flags(
    reads: dict[str, Result], first_version: str
) -> None:
    shown = reads["show version"].json()
    report = shown["evaluation"]["fairness"]
    assert shown["fairness_flags"] == report["flagged"]
    assert reads["fairness json"].code == 0
    assert {c["name"] for c in reads["fairness json"].json()["columns"]} == {g.name for g in SCHEMA.groups}
    table = reads["fairness"]
    assert table.code == 0, table.stderr
    rows = [line.split()[0] for line in table.stdout.splitlines()[1:] if "=" in line.split()[0]]
    expected = [f"{c['name']}={g['value']}" for c in report["columns"] for g in c["groups"]]
    assert rows == [label[:24] for label in expected]
    assert table.stdout.count("FLAGGED") == sum(g["flagged"] for c in report["columns"] for g in c["groups"])


def test_models_show_unknown_version_is_a_user_error(reads: dict[str, Result]) -> None:
    assert "no model version" in _assert_user_error(reads["show unknown"])


# -- predict -------------------------------------------------------------------------------
def test_predict_accepts_a_json_object(reads: dict[str, Result], second_version: str) -> None:
    [prediction] = reads["predict object"].json()
    assert 0 <= prediction["probability"] <= 1
    assert prediction["prediction"] in SCHEMA.target.labels
    assert prediction["model_version"] == second_version


def test_predict_accepts_a_json_list_and_a_model_version(reads: dict[str, Result], first_version: str) -> None:
    result = reads["predict list"]
    assert result.code == 0, result.stderr
    predictions = result.json()
    assert len(predictions) == 3
    assert {p["model_version"] for p in predictions} == {first_version}


def test_predict_accepts_a_csv_file(reads: dict[str, Result]) -> None:
    predictions = reads["predict csv"].json()
    assert len(predictions) == 4  # --limit
    assert all(0 <= p["probability"] <= 1 for p in predictions)


def test_predict_imputes_empty_csv_cells(reads: dict[str, Result]) -> None:
    result = reads["predict gappy csv"]
    assert result.code == 0, result.stderr
    predictions = result.json()
    assert len(predictions) == 3
    assert all(0 <= p["probability"] <= 1 for p in predictions)


def test_predict_explain_adds_each_prediction_s_top_factors(reads: dict[str, Result], trained: Trained) -> None:
    result = reads["predict explained"]
    assert result.code == 0, result.stderr
    plain = reads["predict gappy csv"].json()
    for answer, unexplained in zip(result.json(), plain, strict=True):
        explained = answer.pop("explanation")
        assert answer == unexplained
        assert explained["score"] == pytest.approx(answer["probability"], abs=1e-6)  # a forest: identity link
        assert 0 < len(explained["factors"]) <= 2
        assert {f["feature"] for f in explained["factors"]} <= set(SCHEMA.feature_names)
    written = pd.read_csv(trained.root / "reads" / "explained.csv")
    assert reads["predict explained csv"].code == 0, reads["predict explained csv"].stderr
    for line in written["top_factors"]:
        factors = line.split("; ")
        assert 0 < len(factors) <= 3  # CCML_EXPLAIN_TOP
        assert all(f.split("=", 1)[0] in SCHEMA.feature_names for f in factors)
        assert all(f.split(" ")[1] in ("raises", "lowers") for f in factors)


def test_predict_invalid_input_names_the_field(reads: dict[str, Result]) -> None:
    assert NUMERIC.name in _assert_user_error(reads["predict invalid"], one_line=False)


def test_predict_malformed_json_is_a_one_line_user_error(reads: dict[str, Result]) -> None:
    assert "not valid JSON" in _assert_user_error(reads["predict malformed"])


def test_predict_without_a_champion_is_a_one_line_user_error(reads: dict[str, Result]) -> None:
    assert "champion" in _assert_user_error(reads["empty predict"])


# -- config and user errors ----------------------------------------------------------------
def test_config_json_masks_secrets(reads: dict[str, Result], trained: Trained) -> None:
    result = reads["config"]
    values = result.json()
    assert values["home"] == str(trained.home)
    assert values["signing_key"] == values["api_key"] == "**********"
    for secret in ("sign-secret-123", "api-secret-456"):
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_train_missing_file_is_a_one_line_user_error(reads: dict[str, Result]) -> None:
    assert "absent.csv" in _assert_user_error(reads["train missing file"])


def test_train_unreadable_csv_is_a_one_line_user_error(reads: dict[str, Result]) -> None:
    assert "not a readable CSV" in _assert_user_error(reads["train broken csv"])


def test_unknown_trainer_in_environment_is_a_one_line_user_error_listing_known_ones(
    reads: dict[str, Result],
) -> None:
    message = _assert_user_error(reads["unknown trainer"])
    assert "xgboost" in message
    for name in TRAINERS.names():
        assert name in message


# -- invalid training data -----------------------------------------------------------------
def _invalid_csv(case: str, frame: pd.DataFrame) -> tuple[str, str]:
    """(CSV text, column the report must name) for one kind of invalid training file."""
    text = frame.astype(object)
    if case == "missing column":
        column = SCHEMA.features[-1].column
        return text.drop(columns=[column]).to_csv(index=False), column
    if case == "text in numeric column":
        text.loc[5, NUMERIC.column] = "lots"
        return text.to_csv(index=False), NUMERIC.column
    if case == "unknown category":
        text.loc[7, CATEGORICAL.column] = "Underwater Basket Weaving"
        return text.to_csv(index=False), CATEGORICAL.column
    if case == "empty file":
        return "", SCHEMA.target.column
    text[SCHEMA.target.column] = SCHEMA.target.completed_value
    return text.to_csv(index=False), SCHEMA.target.column


@dataclass(frozen=True)
class InvalidRuns:
    results: dict[str, Result]
    columns: dict[str, str]
    listing_before: Any
    listing_after: Any
    files_before: dict[str, str]
    files_after: dict[str, str]


@pytest.fixture(scope="module")
def invalid_runs(trained: Trained, reads: dict[str, Result]) -> InvalidRuns:
    work = trained.root / "invalid"
    shutil.copytree(trained.home, work / "home")
    cli = Cli(work, work / "home")
    frame = pd.read_csv(trained.sample).head(200)
    commands: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {}
    columns = {}
    for position, case in enumerate(INVALID_CASES):
        content, columns[case] = _invalid_csv(case, frame)
        path = work / f"invalid-{position}.csv"
        path.write_text(content)
        commands[case] = (("train", "--data", str(path), "--json"), {})
    listing_before = reads["list json"].json()  # the same store, before this copy was made
    files_before = tree_digest(cli.home)
    results = cli.many(commands)
    return InvalidRuns(
        results, columns, listing_before, cli("models", "list", "--json").json(), files_before, tree_digest(cli.home)
    )


@pytest.mark.parametrize("case", INVALID_CASES)
def test_invalid_csv_fails_with_the_validation_report(invalid_runs: InvalidRuns, case: str) -> None:
    result = invalid_runs.results[case]
    message = _assert_user_error(result, one_line=False)
    assert message.startswith("error: data validation failed")
    assert invalid_runs.columns[case] in message
    assert result.stdout == ""


def test_invalid_csvs_leave_models_list_and_the_store_unchanged(invalid_runs: InvalidRuns) -> None:
    assert len(invalid_runs.listing_before) == 2
    assert invalid_runs.listing_after == invalid_runs.listing_before
    assert invalid_runs.files_after == invalid_runs.files_before


# -- models that move the champion ---------------------------------------------------------
@pytest.fixture
def private(tmp_path: Path, trained: Trained) -> Cli:
    """A private copy of the trained home, so a test may promote and roll back freely."""
    shutil.copytree(trained.home, tmp_path / "home")
    return Cli(tmp_path, tmp_path / "home")


def test_models_promote_moves_champion_and_history_records_it_as_forced(
    private: Cli, first_version: str, second_version: str
) -> None:
    promoted = private("models", "promote", first_version, "--reason", "hand-picked", "--json")
    assert promoted.code == 0, promoted.stderr
    assert promoted.json() == {
        "alias": "champion",
        "version": first_version,
        "previous": second_version,
        "forced": True,
    }
    forced = private("models", "history", "--json").json()[-1]
    assert (forced["action"], forced["version"], forced["previous"]) == ("force_promote", first_version, second_version)
    assert forced["reason"] == "hand-picked"
    assert forced["at"]


def test_models_rollback_restores_the_previous_champion_once(
    private: Cli, first_version: str, second_version: str
) -> None:
    result = private("models", "rollback", "--json")
    assert result.code == 0, result.stderr
    assert result.json() == {
        "alias": "champion",
        "version": first_version,
        "rolled_back_from": second_version,
        "forward_again": f"ccml models promote {second_version}",
    }
    after = private.many(
        {
            "show": (("models", "show", "champion"), {}),
            "again": (("models", "rollback"), {}),
        }
    )
    assert after["show"].json()["version"] == first_version
    assert "no earlier version" in _assert_user_error(after["again"])


def test_models_gc_removes_only_old_leftovers_of_interrupted_saves(private: Cli, second_version: str) -> None:
    versions = private.home / "models" / "versions"
    leftover = versions / "20200101T000000.000000Z" / "model.skops"  # a save killed years ago
    leftover.parent.mkdir()
    leftover.write_bytes(b"half a save")
    recent = versions / second_version / ".model.onnx.x.tmp"  # a write that may still be running
    recent.write_bytes(b"in flight")

    result = private("models", "gc", "--json")

    assert result.code == 0, result.stderr
    assert result.json() == {"removed": ["versions/20200101T000000.000000Z/model.skops"]}
    assert not leftover.parent.exists()
    assert recent.exists()
    assert private("models", "show", "champion").json()["version"] == second_version
