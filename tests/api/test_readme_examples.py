"""The README's example commands, run as written against a live ``ccml serve`` on loopback.

The quick start's and the REST section's ``bash`` blocks are parsed into commands, each followed
by the answer the README shows for it (``# ...`` lines). The model is trained the way ``make
run`` trains it (``ccml data sample --rows 5000 --seed 7``, then ``ccml train``), so the values
the README states are the values a new user sees. An answer must have the documented shape
(the same keys, list lengths and types) and the documented values: strings equal, numbers
equal to the precision the README writes them with; a version id stands for any version id.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import CCML_SCRIPT, ServerProcess

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
VERSION_ID = re.compile(r"\d{8}T\d{6}(\.\d{6})?Z")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def section(text: str, heading: str) -> str:
    """The text under ``## heading``, up to the next ``## ``."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.DOTALL)


def examples(block: str) -> list[tuple[str, list[str]]]:
    """(command, the answer's lines as the README shows them) for every curl command of a block."""
    found: list[tuple[str, list[str]]] = []
    pending = ""
    for line in block.splitlines():
        if pending or not line.lstrip().startswith("#"):
            pending = f"{pending}\n{line}" if pending else line
            try:
                shlex.split(pending)
            except ValueError:  # an open quote: the command goes on
                continue
            if pending.endswith("\\"):
                continue
            if pending.strip():
                found.append((pending.strip(), []))
            pending = ""
        elif found:
            found[-1][1].append(line.lstrip()[2:] if line.lstrip().startswith("# ") else line.lstrip()[1:])
    return [(command, answer) for command, answer in found if command.startswith("curl ")]


def decimals(number: float, written: str) -> float:
    """Half a unit of the last digit the README writes (0.15 -> 0.005)."""
    return 0.5 * 10.0 ** -len(written.split(".")[1]) if "." in written else 0.5


def matches(expected: Any, actual: Any, written: str, where: str = "$") -> list[str]:
    """Where ``actual`` differs from the documented ``expected`` (empty when it matches)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(expected) != set(actual):
            got = sorted(actual) if isinstance(actual, dict) else actual
            return [f"{where}: keys {got!r}, documented {sorted(expected)}"]
        return [p for key in expected for p in matches(expected[key], actual[key], written, f"{where}.{key}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: {actual!r}, documented a list of {len(expected)}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in matches(e, a, written, f"{where}[{i}]")
        ]
    for pattern in (VERSION_ID, TIMESTAMP):  # a version id or a time stands for any other
        if isinstance(expected, str) and pattern.fullmatch(expected):
            ok = isinstance(actual, str) and pattern.fullmatch(actual) is not None
            return [] if ok else [f"{where}: {actual!r} is not like {expected!r}"]
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return [] if actual == expected else [f"{where}: {actual!r}, documented {expected!r}"]
    if isinstance(expected, int | float):
        shown = re.search(rf'"{re.escape(where.rsplit(".", 1)[-1])}"\s*:\s*(-?[\d.]+)', written)
        tolerance = decimals(expected, shown.group(1)) if shown else 1e-9
        ok = isinstance(actual, int | float) and not isinstance(actual, bool) and abs(actual - expected) <= tolerance
        return [] if ok else [f"{where}: {actual!r}, documented {expected!r}"]
    return [f"{where}: cannot compare {expected!r}"]


def _normalised(line: str) -> str:
    """A line with version ids and times replaced: they differ on every training."""
    return TIMESTAMP.sub("<time>", VERSION_ID.sub("<version>", line))


def same_text(expected: list[str], actual: str) -> list[str]:
    got = [_normalised(line) for line in actual.splitlines()]
    want = [_normalised(line) for line in expected]
    return [] if got == want else [f"answer {got}, documented {want}"]


@pytest.fixture(scope="module")
def make_run_server(
    tmp_path_factory: pytest.TempPathFactory, ccml_serve: Callable[..., ServerProcess]
) -> Iterator[ServerProcess]:
    """``ccml serve`` with the model ``make run`` trains (its sample data and default settings)."""
    home = tmp_path_factory.mktemp("readme") / ".ccml"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CCML_", "AWS_"))}
    env.update(CCML_HOME=str(home), CCML_LOG_LEVEL="warning")
    sample = home / "data" / "sample.csv"
    for args in (
        ["data", "sample", "--rows", "5000", "--seed", "7", "--out", str(sample)],
        ["train", "--data", str(sample)],
    ):
        done = subprocess.run(
            [str(CCML_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr
    server = ccml_serve(home)
    try:
        yield server
    finally:
        server.stop()


def _cases() -> list[tuple[str, str, list[str]]]:
    text = README.read_text("utf-8")
    cases = []
    for heading in ("Quick start", "REST API"):
        for block in bash_blocks(section(text, heading)):
            cases += [(heading, command, answer) for command, answer in examples(block)]
    return cases


CASES = _cases()


def test_the_readme_documents_an_answer_for_every_example_command() -> None:
    assert len(CASES) >= 6, "the quick start and REST sections lost their examples?"
    undocumented = [command for _, command, answer in CASES if not answer]
    assert undocumented == [], "README commands without the answer they give"


@pytest.mark.parametrize(("heading", "command", "answer"), CASES, ids=[f"{h}: {c[:50]}" for h, c, _ in CASES])
def test_a_readme_command_answers_as_documented(
    make_run_server: ServerProcess, heading: str, command: str, answer: list[str]
) -> None:
    runnable = command.replace("localhost:8000", make_run_server.url.removeprefix("http://"))
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", runnable], capture_output=True, text=True, timeout=60, check=False
    )
    # head closes the pipe early: the writer's broken pipe is not the command failing.
    assert done.returncode in (0, 141) or "| head" in command, done.stderr
    written = "\n".join(answer)
    try:
        expected = json.loads(written)
    except ValueError:
        problems = same_text(answer, done.stdout)
    else:
        problems = matches(expected, json.loads(done.stdout), written)
    assert problems == [], f"{heading}: `{command}` answered {done.stdout!r}"
