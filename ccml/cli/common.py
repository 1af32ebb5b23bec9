"""What every ``ccml`` command shares: the Typer apps, settings, output, and error handling.

With ``--json`` a command prints exactly one JSON document on stdout; logs and progress go
to stderr. A user error exits 1 with a message on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Final, ParamSpec, TypeVar

import typer

from ccml.core.errors import CcmlError, ConfigError
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


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"ccml {version('ccml')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Train, version, promote and serve course-completion models."""


JsonOption = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with ``overrides``, and logging configured from them."""
    settings = Settings.load(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_format)
    return settings


def read_settings_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML file (``ccml tune --out``): keys are settings' names (``trainer``, ``cv_folds``, ...).

    ``trainer_params`` may be a table or the JSON text ``CCML_TRAINER_PARAMS`` takes.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or names a setting that does not exist.
    """
    try:
        values: dict[str, Any] = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc
    known = set(Settings.model_fields)
    if unknown := sorted(set(values) - known):
        raise ConfigError(f"settings file {path}: unknown setting(s) {unknown}; known: {', '.join(sorted(known))}")
    if isinstance(values.get("trainer_params"), str):
        try:
            values["trainer_params"] = json.loads(values["trainer_params"])
        except ValueError as exc:
            raise ConfigError(f"settings file {path}: trainer_params is not valid JSON: {exc}") from exc
    return values


def emit(document: Any, as_json: bool, text: Callable[[], str]) -> None:
    """Print ``document`` as one JSON document, or ``text()`` for people."""
    if as_json:
        sys.stdout.write(json.dumps(finite(document), indent=2, default=str, allow_nan=False) + "\n")
    else:
        sys.stdout.write(text() + "\n")


# Which extra brings a package (pyproject.toml): an install of one runtime's set (the api image has
# only ``serve``) answers a command of the other with the install that adds it, not a traceback.
EXTRAS: Final = {
    **dict.fromkeys(
        ("sklearn", "scipy", "pandas", "skl2onnx", "onnx", "skops", "joblib", "duckdb", "matplotlib"), "train"
    ),
    **dict.fromkeys(("fastapi", "starlette", "uvicorn", "prometheus_client", "onnxruntime"), "serve"),
    "pyspark": "spark",
}


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """The message for a package of an extra that is not installed, or None for any other module."""
    package = (exc.name or "").partition(".")[0]
    extra = EXTRAS.get(package)
    if extra is None:
        return None
    return f"this command needs {package}, which is not installed: pip install 'ccml[{extra}]'"


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn ccml's errors, and a missing package of an extra, into a message and exit status 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CcmlError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except ModuleNotFoundError as exc:
            message = missing_extra_message(exc)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(1) from None

    return wrapper
