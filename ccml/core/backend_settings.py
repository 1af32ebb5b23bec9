"""A backend's own settings: their base class, the variables they read, building them, unknown variables.

A registry entry may declare a settings model (``Registry.register(..., settings=)``): a
``BaseSettings`` class whose ``env_prefix`` is ``CCML_<BACKEND>_``, ideally a ``BackendSettings``.
``Settings.backend`` builds it from the same environment and ``.env`` as ``Settings`` itself;
its keyword overrides are the variables' names without ``CCML_`` (``s3_bucket="b"`` for
``CCML_S3_BUCKET``), so the names stay flat whoever declares them.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, DotEnvSettingsSource, SettingsConfigDict, SettingsError

from ccml.core.errors import ConfigError
from ccml.core.registry import Registry


class BackendSettings(BaseSettings):
    """Base of a backend's settings model: a subclass sets ``env_prefix`` (``CCML_<BACKEND>_``) and its fields.

    A field without a default is required: choosing the backend without its variable fails at
    start-up with ``CCML_STORAGE=<name> needs CCML_<BACKEND>_<FIELD>``.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", validate_default=True, populate_by_name=True
    )


class UnknownSettingWarning(UserWarning):
    """``CCML_*`` variables that no setting reads: a typo, or the variable of a backend not installed."""


@dataclass(frozen=True)
class Variable:
    """One field of a settings model and the ``CCML_*`` variable it is read from."""

    field: str  # the field's name in the model
    argument: str  # the keyword the model's constructor takes for it (its alias, if any)
    name: str  # the environment variable, upper case

    @property
    def key(self) -> str:
        """The keyword ``Settings`` takes for it: the variable's name without ``CCML_``, lower case."""
        return self.name.removeprefix("CCML_").lower()


def variables(model: type[BaseSettings]) -> list[Variable]:
    """The variables ``model`` reads, one per field (a string ``validation_alias`` is the variable's name)."""
    prefix = str(model.model_config.get("env_prefix", ""))
    found = []
    for field, info in model.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, str):
            found.append(Variable(field, alias, alias.upper()))
        else:
            found.append(Variable(field, field, f"{prefix}{field}".upper()))
    return found


def chooser(registry: Registry[Any], name: str) -> str:
    """How the user picked backend ``name``, as error messages say it: ``CCML_STORAGE=s3``."""
    if registry.setting is None:
        return f"the {name} {registry.concept}"
    return f"CCML_{registry.setting.upper()}={name}"


def build(
    model: type[BaseSettings], overrides: Mapping[str, Any], picked_by: str, env_file: Any = ".env"
) -> BaseSettings:
    """Build ``model`` from the environment, ``env_file`` and ``overrides`` (keyed by ``Variable.key``).

    Raises:
        ConfigError: one message naming every missing variable (``CCML_STORAGE=s3 needs
            CCML_S3_BUCKET``) and every invalid one.
    """
    fields = variables(model)
    values = {v.argument: overrides[v.key] for v in fields if v.key in overrides}
    try:
        return model(_env_file=env_file, **values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, fields, picked_by)) from exc
    except SettingsError as exc:  # a complex value that is not JSON
        raise ConfigError(f"invalid settings for {picked_by}: {exc}; complex values must be valid JSON") from exc


def _describe(exc: ValidationError, fields: list[Variable], picked_by: str) -> str:
    by_argument = {v.argument: v.name for v in fields} | {v.field: v.name for v in fields}
    missing: list[str] = []
    invalid: list[str] = []
    for error in exc.errors():
        variable = by_argument.get(str(error["loc"][0])) if error["loc"] else None
        if variable is not None and error["type"] == "missing":
            missing.append(variable)
        elif variable is not None:
            invalid.append(f"{variable}: {error['msg']}")
        else:  # a check of several fields: its message names them
            invalid.append(str(error["msg"]).removeprefix("Value error, "))
    parts = [f"{picked_by} needs {', '.join(missing)}"] if missing else []
    if invalid:
        parts.append(f"invalid settings: {'; '.join(invalid)}")
    return "; ".join(parts)


def registered(registries: Iterable[Registry[Any]]) -> list[Variable]:
    """Every variable the settings model of a registered backend reads.

    Imports every declared settings model (they are small by design); one that cannot be
    imported is left out here, and fails when its backend is chosen.
    """
    found: list[Variable] = []
    for registry in registries:
        for entry in registry.names():
            try:
                model = registry.settings_model(entry)
            except ConfigError:
                continue
            found.extend(variables(model) if model is not None else [])
    return found


def unknown_variables(known: set[str], registries: Iterable[Registry[Any]], env_file: Any = ".env") -> list[str]:
    """The ``CCML_*`` variables of the environment and ``env_file`` that neither ``known`` nor a backend names.

    Backends' settings models are imported only when some variable is not in ``known``.
    """
    dotenv = DotEnvSettingsSource(BackendSettings, env_file=env_file).env_vars
    present = {name.upper() for name in [*os.environ, *dotenv] if name.upper().startswith("CCML_")}
    unknown = present - known
    if unknown:
        known = known | {v.name for v in registered(registries)}
        unknown -= known
    return [_with_hint(name, known) for name in sorted(unknown)]


def _with_hint(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
    return f"{name} (did you mean {close[0]}?)" if close else name
