"""The scikit-learn predictor: runs the artifact's fitted pipeline."""

from __future__ import annotations

import numpy as np

from ccml.core.artifact import ModelArtifact
from ccml.core.contracts import Predictor, Probabilities, Records
from ccml.core.decision import served_threshold
from ccml.core.settings import Settings


class SklearnPredictor(Predictor):
    """Encodes records with the pipeline's own ``SchemaEncoder`` (no DataFrame needed for
    mappings), then runs the rest of the pipeline on the float matrix."""

    def __init__(self, artifact: ModelArtifact, threshold: float = 0.5) -> None:
        super().__init__(artifact, threshold)
        pipeline = artifact.pipeline  # ArtifactIntegrityError unless it is a ccml pipeline
        self._encoder = pipeline[0]
        self._model = pipeline[1:]
        self._positive = list(pipeline.classes_).index(1)

    def _predict_proba(self, records: Records) -> Probabilities:
        matrix = self._encoder.transform(records)
        return np.asarray(self._model.predict_proba(matrix)[:, self._positive], dtype=np.float64)


def build_sklearn_predictor(settings: Settings, artifact: ModelArtifact) -> SklearnPredictor:
    """Return a scikit-learn predictor for ``artifact``, at the configured decision threshold.

    Raises:
        ArtifactIntegrityError: the version's pipeline is missing, untrusted, made by another
            scikit-learn major.minor, or not a ccml pipeline.
    """
    return SklearnPredictor(
        artifact, threshold=served_threshold(artifact.manifest.decision, settings.decision_threshold)
    )
