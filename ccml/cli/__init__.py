"""The ``ccml`` command line: a thin composition of settings-built components.

Each module holds a group of commands (``training``, ``activity``, ``models``, ``serving``); importing them
registers the commands on ``app``. See ``ccml.cli.common`` for the output and error rules.
A composition root: may import anything in ``ccml`` (heavy modules lazily, inside commands).
"""

from __future__ import annotations

import sys

import typer

from ccml.cli import activity, drift, models, schema, serving, sql, training, tuning
from ccml.cli.common import app
from ccml.core.errors import ConfigError

__all__ = ["activity", "app", "drift", "main", "models", "schema", "serving", "sql", "training", "tuning"]


def main() -> None:
    """Run the ``ccml`` command (the console script's entry point)."""
    try:
        app()
    except ConfigError as exc:  # raised while typer builds a command's defaults
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
