"""The README is the user's manual: what it says about settings and commands must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from ccml.cli import app
from ccml.core.settings import setting_variables

README = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
# A row of a settings table: | `CCML_NAME` | default | meaning |
TABLE_ROW = re.compile(r"^\| `(CCML_[A-Z0-9_]+)` \|", re.MULTILINE)


def _variables() -> set[str]:
    return setting_variables()  # Settings' own and every registered backend's CCML_* variables


def test_every_setting_has_a_row_in_a_settings_table_and_every_row_is_a_setting() -> None:
    documented = set(TABLE_ROW.findall(README))
    assert sorted(_variables() - documented) == [], "settings missing from the README's tables"
    assert sorted(documented - _variables()) == [], "README rows for settings that do not exist"


def test_every_command_the_readme_runs_exists() -> None:
    group = get_command(app)
    commands = {name: getattr(command, "commands", {}) for name, command in group.commands.items()}  # type: ignore[attr-defined]
    # Commands in code blocks and inline code, as `ccml x` or `.venv/bin/ccml x y`.
    code = "\n".join(re.findall(r"```.*?```", README, re.DOTALL) + re.findall(r"`[^`\n]+`", README))
    used = re.findall(r"(?<![\w-])ccml ([a-z]+)(?: ([a-z]+))?", code)
    assert used, "the README runs no ccml command?"
    for command, sub in used:
        assert command in commands, f"README runs `ccml {command}`, which does not exist"
        if commands[command] and sub:
            assert sub in commands[command], f"README runs `ccml {command} {sub}`, which does not exist"


def test_the_settings_errors_the_readme_quotes_are_the_ones_ccml_config_prints() -> None:
    import os
    import subprocess
    import sys

    quoted = re.findall(r"`((?:CCML_[A-Z_]+=\S+ )+)ccml config` -> `(error: [^`]+)`", README)
    assert quoted, "the README quotes no settings error?"
    script = Path(sys.executable).parent / "ccml"
    for assignments, message in quoted:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCML_")}
        env.update(dict(a.split("=", 1) for a in assignments.split()))
        done = subprocess.run([str(script), "config"], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 1
        assert done.stderr.strip() == message
