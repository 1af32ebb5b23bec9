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
