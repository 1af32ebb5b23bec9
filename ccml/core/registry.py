"""Name -> factory registries: how settings pick implementations, and how plugins add them.

Each concept (data source, model store, trainer, predictor) has one ``Registry``. Built-in
entries are dotted paths imported on first use, so choosing ``local`` never imports boto3.
Third-party packages add entries without touching ccml through Python entry points in the
group ``ccml.<concept>`` (for example ``ccml.model_stores``), whose value is
``package.module:factory``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from ccml.core.errors import ConfigError

if TYPE_CHECKING:
    from ccml.core.artifact import ModelArtifact
    from ccml.core.contracts import DataSource, ModelStore, Predictor, Trainer
    from ccml.core.settings import Settings

F = TypeVar("F", bound=Callable[..., object])


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
    """Maps a lowercase key to a factory, or to the dotted path of one."""

    def __init__(self, concept: str, group: str) -> None:
        self.concept = concept
        self.group = group
        self._entries: dict[str, F | str] = {}

    def register(self, name: str, factory: F | str) -> None:
        """Register ``factory`` (or ``"module:attr"``) under ``name``, replacing any earlier one."""
        if name != name.lower() or not name:
            raise ValueError(f"{self.concept} names are non-empty and lowercase, got {name!r}")
        self._entries[name] = factory

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
        entry = self._entries.get(name) or self._plugins()[name]
        if not isinstance(entry, str):
            return entry
        loaded = _import(entry)
        if not callable(loaded):
            raise ConfigError(f"{self.concept} {name!r} points at {entry!r}, which is not callable")
        factory = cast(F, loaded)
        self._entries[name] = factory
        return factory


MODEL_STORES: Registry[Callable[[Settings], ModelStore]] = Registry("model store", "ccml.model_stores")
MODEL_STORES.register("local", "ccml.storage.local:build_local_model_store")
MODEL_STORES.register("s3", "ccml.storage.s3:build_s3_model_store")

# Data sources are keyed like stores; a location's URI scheme (s3://) overrides the setting.
DATA_SOURCES: Registry[Callable[[Settings, str], DataSource]] = Registry("data source", "ccml.data_sources")
DATA_SOURCES.register("local", "ccml.storage.local:build_local_data_source")
DATA_SOURCES.register("s3", "ccml.storage.s3:build_s3_data_source")

TRAINERS: Registry[Callable[[Settings], Trainer]] = Registry("trainer", "ccml.trainers")
TRAINERS.register("random_forest", "ccml.models.training.trainers:build_random_forest")
TRAINERS.register("hist_gradient_boosting", "ccml.models.training.trainers:build_hist_gradient_boosting")
TRAINERS.register("logistic_regression", "ccml.models.training.trainers:build_logistic_regression")

PREDICTORS: Registry[Callable[[Settings, ModelArtifact], Predictor]] = Registry("predictor", "ccml.predictors")
PREDICTORS.register("sklearn", "ccml.models.serving.sklearn:build_sklearn_predictor")
PREDICTORS.register("onnx", "ccml.models.serving.onnx:build_onnx_predictor")
