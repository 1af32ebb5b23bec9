"""Name -> factory registries: how settings pick implementations, and how plugins add them.

Each concept (data source, model store, trainer, predictor) has one ``Registry``. Built-in
entries are dotted paths imported on first use, so choosing ``local`` never imports boto3.
An entry may carry its backend's settings model (a ``pydantic_settings.BaseSettings`` class
reading ``CCML_<BACKEND>_*``, or the dotted path of one), so a backend declares its own
settings. Third-party packages add entries without touching ccml through Python entry points
in the group ``ccml.<concept>`` (for example ``ccml.model_stores``), whose value is
``package.module:factory``, and their settings model in ``ccml.<concept>.settings`` under the
same name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic_settings import BaseSettings

from ccml.core.errors import ConfigError

if TYPE_CHECKING:
    from ccml.core.artifact import ModelArtifact
    from ccml.core.contracts import DataSource, ModelStore, Predictor, Trainer
    from ccml.core.settings import Settings

F = TypeVar("F", bound=Callable[..., object])
SettingsModel = type[BaseSettings]


def _import(path: str) -> object:
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ConfigError(f"{path!r} is not of the form 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # a backend not shipped yet, or a plugin missing a dependency
        raise ConfigError(f"cannot import {module_name!r} for {path!r}: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise ConfigError(f"{module_name} has no attribute {attribute!r}") from exc


class Registry(Generic[F]):
    """Maps a lowercase key to a factory (or the dotted path of one) and, optionally, its settings model.

    ``setting`` names the ``Settings`` field that picks one entry (``storage`` for model stores);
    None when something else picks it (a data source's URI scheme).
    """

    def __init__(self, concept: str, group: str, setting: str | None = None) -> None:
        self.concept = concept
        self.group = group
        self.settings_group = f"{group}.settings"
        self.setting = setting
        self._entries: dict[str, F | str] = {}
        self._settings: dict[str, SettingsModel | str] = {}

    def register(self, name: str, factory: F | str, settings: SettingsModel | str | None = None) -> None:
        """Register ``factory`` (or ``"module:attr"``) under ``name``, replacing any earlier one.

        ``settings`` is the backend's settings model (or ``"module:Class"``): a ``BaseSettings``
        class whose ``env_prefix`` starts with ``CCML_``, built by ``Settings.backend``.
        """
        if name != name.lower() or not name:
            raise ValueError(f"{self.concept} names are non-empty and lowercase, got {name!r}")
        self._entries[name] = factory
        if settings is None:
            self._settings.pop(name, None)
        else:
            self._settings[name] = settings

    def _plugins(self) -> dict[str, str]:
        return {ep.name: ep.value for ep in entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Every known name: registered in code, or advertised by an installed plugin."""
        return sorted(set(self._entries) | set(self._plugins()))

    def check(self, name: str) -> str:
        """Return ``name`` if known, else raise ``ConfigError`` listing the known names."""
        if name not in self._entries and name not in self._plugins():
            raise ConfigError(f"unknown {self.concept} {name!r}; known: {', '.join(self.names()) or '(none)'}")
        return name

    def get(self, name: str) -> F:
        """The factory for ``name``, importing it if it was registered by path."""
        self.check(name)
        entry = self._entries.get(name)
        if entry is None:  # a plugin's, kept from now on like an entry registered in code
            entry = self._plugins()[name]
            if (settings := self._plugin_settings().get(name)) is not None:
                self._settings[name] = settings
        if not isinstance(entry, str):
            return entry
        loaded = _import(entry)
        if not callable(loaded):
            raise ConfigError(f"{self.concept} {name!r} points at {entry!r}, which is not callable")
        factory = cast(F, loaded)
        self._entries[name] = factory
        return factory

    def _plugin_settings(self) -> dict[str, str]:
        return {ep.name: ep.value for ep in entry_points(group=self.settings_group)}

    def settings_model(self, name: str) -> SettingsModel | None:
        """The settings model ``name`` declares (imported if registered by path), or None.

        An entry registered in code declares it with ``register(..., settings=)``; a plugin's entry,
        under the same name in the ``<group>.settings`` entry-point group.

        Raises:
            ConfigError: ``name`` is unknown, or its settings model cannot be imported or is no
                ``BaseSettings`` class reading ``CCML_*`` variables.
        """
        self.check(name)
        entry = self._settings.get(name) if name in self._entries else self._plugin_settings().get(name)
        if entry is None or not isinstance(entry, str):
            return entry
        loaded = _import(entry)
        if not (isinstance(loaded, type) and issubclass(loaded, BaseSettings)):
            raise ConfigError(f"{self.concept} {name!r} declares settings {entry!r}, which is no BaseSettings class")
        prefix = str(loaded.model_config.get("env_prefix", ""))
        if not prefix.upper().startswith("CCML_"):
            raise ConfigError(f"{self.concept} {name!r}: settings {entry!r} must read CCML_* (env_prefix={prefix!r})")
        if name in self._entries:
            self._settings[name] = loaded
        return loaded


MODEL_STORES: Registry[Callable[[Settings], ModelStore]] = Registry("model store", "ccml.model_stores", "storage")
MODEL_STORES.register("local", "ccml.storage.local:build_local_model_store")
MODEL_STORES.register("s3", "ccml.storage.s3:build_s3_model_store", settings="ccml.storage.s3_settings:S3StoreSettings")

# Data sources are keyed like stores; a location's URI scheme (s3://) picks one, not a setting.
DATA_SOURCES: Registry[Callable[[Settings, str], DataSource]] = Registry("data source", "ccml.data_sources")
DATA_SOURCES.register("local", "ccml.storage.local:build_local_data_source")
DATA_SOURCES.register("s3", "ccml.storage.s3:build_s3_data_source", settings="ccml.storage.s3_settings:S3Settings")

TRAINERS: Registry[Callable[[Settings], Trainer]] = Registry("trainer", "ccml.trainers", "trainer")
TRAINERS.register("random_forest", "ccml.models.training.trainers:build_random_forest")
TRAINERS.register("hist_gradient_boosting", "ccml.models.training.trainers:build_hist_gradient_boosting")
TRAINERS.register("logistic_regression", "ccml.models.training.trainers:build_logistic_regression")

PREDICTORS: Registry[Callable[[Settings, ModelArtifact], Predictor]] = Registry(
    "predictor", "ccml.predictors", "predictor"
)
PREDICTORS.register("sklearn", "ccml.models.serving.sklearn:build_sklearn_predictor")
PREDICTORS.register("onnx", "ccml.models.serving.onnx:build_onnx_predictor")

REGISTRIES: tuple[Registry[Any], ...] = (MODEL_STORES, DATA_SOURCES, TRAINERS, PREDICTORS)
