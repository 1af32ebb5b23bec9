"""The CLI for people and for scripts: progress and tables on a terminal, machine-readable
output elsewhere, ``tune``, ``schema infer``, ``predict`` from stdin with ids, ``--version``,
``rollback``'s way forward, ``config``'s variable names."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import termios
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.unit.test_cli import CCML, Cli

pytestmark = pytest.mark.skipif(not CCML.exists(), reason=f"console script not installed at {CCML}")


@dataclass(frozen=True)
class Home:
    cli: Cli
    sample: Path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("people")
    cli = Cli(root, root / "home")
    sample = root / "sample.csv"
    assert cli("data", "sample", "--rows", "400", "--seed", "5", "--out", str(sample)).code == 0
    frame = pd.read_csv(sample)
    frame["Notes"] = "n/a"  # a column the schema does not know
    frame.to_csv(sample, index=False)
    return Home(cli, sample)


def on_terminal(cli: Cli, *args: str, typed: bytes = b"") -> tuple[int, str]:
    """Run ``ccml`` with stdin, stdout and stderr on a pseudo-terminal, as a person does
    (``typed``: what the person types, sent once the process runs)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CCML_", "AWS_"))}
    env.update(CCML_HOME=str(cli.home), CCML_TRAINER_PARAMS='{"n_estimators": 20, "n_jobs": 1}', TERM="xterm")
    env.update(OMP_NUM_THREADS="1", COLUMNS="160")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    process = subprocess.Popen(
        [str(CCML), *args], stdin=follower, stdout=follower, stderr=follower, env=env, cwd=cli.cwd, close_fds=True
    )
    os.close(follower)
    if typed:
        os.write(leader, typed)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=120), b"".join(chunks).decode("utf-8", errors="replace")


def test_train_on_a_terminal_shows_progress_and_a_summary_table_instead_of_log_lines(home: Home) -> None:
    code, screen = on_terminal(home.cli, "train", "--data", str(home.sample), "--cv", "3")
    assert code == 0, screen
    for shown in ("read 400 rows", "validated: 400 rows used", "cross-validation", "3/3", "fitted random_forest"):
        assert shown in screen
    for row in ("promoted", "holdout", "roc_auc", "ignored columns", "Notes"):
        assert row in screen
    assert "stage_started" not in screen
    assert '"event"' not in screen


def test_train_verbose_on_a_terminal_shows_the_structured_logs(home: Home) -> None:
    code, screen = on_terminal(home.cli, "train", "--data", str(home.sample), "--verbose")
    assert code == 0, screen
    assert "stage_started" in screen
    assert "cross-validation" not in screen  # no progress display


def test_train_off_a_terminal_prints_the_plain_summary_with_the_ignored_columns(home: Home) -> None:
    result = home.cli("train", "--data", str(home.sample))
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("version   ")
    assert "ignored   Notes (not in the schema)" in result.stdout
    assert any(json.loads(line)["event"] == "stage_started" for line in result.stderr.splitlines())


def test_tune_is_reproducible_and_train_reads_the_winners_settings(home: Home, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    args = ("tune", "--data", str(home.sample), "--folds", "3", "--max-candidates", "5", "--seed", "3", "--json")
    first = home.cli(*args, "--out", str(settings))
    second = home.cli(*args)
    assert first.code == 0, first.stderr
    runs = [
        [(c["trainer"], c["params"], c["mean"], c["std"]) for c in r.json()["leaderboard"]] for r in (first, second)
    ]
    assert runs[0] == runs[1]
    assert len(runs[0]) == 5
    means = [mean for _, _, mean, _ in runs[0]]
    assert means == sorted(means, reverse=True)
    winner = first.json()["winner"]
    trained = home.cli("train", "--data", str(home.sample), "--settings", str(settings), "--force", "--json")
    assert trained.code == 0, trained.stderr
    manifest = home.cli("models", "show", trained.json()["version"]).json()
    assert manifest["trainer"] == winner["trainer"]
    assert {k: manifest["params"][k] for k in winner["params"]} == winner["params"]


def test_a_settings_file_naming_an_unknown_setting_is_refused_with_the_known_ones(home: Home, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('trainer = "random_forest"\ntrainr_params = "{}"\n')
    result = home.cli("train", "--data", str(home.sample), "--settings", str(settings))
    assert result.code == 1
    assert "unknown setting(s) ['trainr_params']; known: " in result.stderr


def test_schema_infer_drafts_a_schema_that_trains_without_edits(home: Home, tmp_path: Path) -> None:
    schema = tmp_path / "schema.toml"
    drafted = home.cli("schema", "infer", str(home.sample), "--out", str(schema))
    assert drafted.code == 0, drafted.stderr
    assert "target 'CourseCompletion'" in drafted.stderr
    text = schema.read_text()
    assert 'id_columns = ["UserID", "Notes"]' in text
    trained = home.cli("train", "--data", str(home.sample), "--force", "--json", CCML_SCHEMA=str(schema))
    assert trained.code == 0, trained.stderr
    assert trained.json()["columns_ignored"] == []


def test_schema_infer_asks_for_the_target_when_it_is_ambiguous_and_stdin_is_no_terminal(
    home: Home, tmp_path: Path
) -> None:
    path = tmp_path / "two.csv"
    pd.DataFrame({"a": [0, 1] * 10, "b": ["x", "y", "y", "x"] * 5, "n": range(20)}).to_csv(path, index=False)
    result = home.cli("schema", "infer", str(path))
    assert result.code == 1
    assert "error: cannot tell which column is the target: a, b; pass --target COL" in result.stderr


def test_schema_infer_on_a_terminal_asks_which_column_is_the_target(home: Home, tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    pd.DataFrame({"a": [0, 1] * 10, "b": ["x", "y", "y", "x"] * 5, "n": range(20)}).to_csv(path, index=False)
    out = tmp_path / "two.toml"
    code, screen = on_terminal(home.cli, "schema", "infer", str(path), "--out", str(out), typed=b"b\n")
    assert code == 0, screen
    assert "Which column is the target? (a, b)" in screen
    assert 'column = "b"' in out.read_text().split("[target]")[1]


def test_predict_reads_csv_or_json_on_stdin_and_passes_ids_through(home: Home, tmp_path: Path) -> None:
    assert home.cli("train", "--data", str(home.sample), "--force").code == 0
    rows = pd.read_csv(home.sample).head(3)
    csv_in = rows.to_csv(index=False)
    out = tmp_path / "answers.csv"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CCML_")}
    env.update(CCML_HOME=str(home.cli.home), CCML_LOG_LEVEL="warning")
    done = subprocess.run(
        [str(CCML), "predict", "-", "--out", str(out)],
        input=csv_in,
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers = pd.read_csv(out)
    assert answers["UserID"].tolist() == rows["UserID"].tolist()
    assert list(answers.columns) == ["UserID", "prediction", "probability", "model_version"]
    from ccml.core.schema import load_schema
    from ccml.models.serving.records import records_from_frame

    features = {"UserID": int(rows["UserID"].iloc[0]), **records_from_frame(rows.head(1), load_schema())[0]}
    as_json = subprocess.run(
        [str(CCML), "predict", "-", "--json"],
        input=json.dumps(features, default=lambda v: v.item()),
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)[0]
    assert answer["UserID"] == int(rows["UserID"].iloc[0])
    assert answer["probability"] == pytest.approx(answers["probability"].iloc[0], abs=1e-6)


def test_version_rollback_and_config_speak_plainly(home: Home) -> None:
    version = home.cli("--version")
    assert version.code == 0
    assert version.stdout.startswith("ccml ")
    for _ in range(2):
        assert home.cli("train", "--data", str(home.sample), "--force").code == 0
    before = home.cli("models", "show").json()["version"]
    rolled = home.cli("models", "rollback")
    assert rolled.code == 0, rolled.stderr
    now = home.cli("models", "show").json()["version"]
    assert f"champion now points at {now} (rolled back from {before})." in rolled.stdout
    forward = rolled.stdout.splitlines()[-1].removeprefix("To go forward again: ccml ").split()
    assert home.cli(*forward).code == 0
    assert home.cli("models", "show").json()["version"] == before
    config = home.cli("config", CCML_SCHEMA="x.toml")
    assert "CCML_SCHEMA " in config.stdout
    assert "CCML_SCHEMA_FILE" not in config.stdout
