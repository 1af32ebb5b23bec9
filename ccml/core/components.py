"""``build_<concept>(settings)``: the one place settings turn into components."""

from __future__ import annotations

from ccml.core.artifact import ModelArtifact
from ccml.core.contracts import DataSource, ModelStore, Predictor, Trainer
from ccml.core.registry import DATA_SOURCES, MODEL_STORES, PREDICTORS, TRAINERS
from ccml.core.settings import Settings


def build_model_store(settings: Settings) -> ModelStore:
    """Return the model store that ``settings.storage`` names.

    Raises:
        ConfigError: the name is unknown, or its backend cannot be imported.
    """
    return MODEL_STORES.get(settings.storage)(settings)


def build_data_source(settings: Settings, location: str) -> DataSource:
    """A data source for ``location``: its URI scheme (``s3://``) picks the backend; a bare path is local."""
    scheme, found, _ = location.partition("://")
    backend = scheme.lower() if found and scheme.lower() != "file" else "local"
    return DATA_SOURCES.get(backend)(settings, location)


def build_trainer(settings: Settings) -> Trainer:
    """Return the trainer that ``settings.trainer`` names.

    Raises:
        ConfigError: the name is unknown, or its trainer cannot be imported.
    """
    return TRAINERS.get(settings.trainer)(settings)


def build_predictor(settings: Settings, artifact: ModelArtifact) -> Predictor:
    """Return a predictor for ``artifact`` from the backend that ``settings.predictor`` names.

    Raises:
        ConfigError: the name is unknown, or its backend cannot be imported.
        PredictionError: the backend cannot serve this version (for onnx: no usable ``model.onnx``).
    """
    return PREDICTORS.get(settings.predictor)(settings, artifact)
