"""What every ``ccml`` command shares: the Typer apps, settings, output, and error handling.

With ``--json`` a command prints exactly one JSON document on stdout; logs and progress go
to stderr. A user error exits 1 with a message on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from ccml.core.errors import CcmlError
from ccml.core.jsonable import finite
from ccml.core.logging import configure_logging
from ccml.core.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="ccml",
    help="Train, version, promote and serve course-completion models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Training data.", no_args_is_help=True)
models_app = typer.Typer(help="Model versions and aliases in the configured store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")

JsonOption = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with ``overrides``, and logging configured from them."""
    settings = Settings.load(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_format)
    return settings


def emit(document: Any, as_json: bool, text: Callable[[], str]) -> None:
    """Print ``document`` as one JSON document, or ``text()`` for people."""
    if as_json:
        sys.stdout.write(json.dumps(finite(document), indent=2, default=str, allow_nan=False) + "\n")
    else:
        sys.stdout.write(text() + "\n")


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn ccml's errors into a message and exit status 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CcmlError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper
