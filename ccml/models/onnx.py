"""The ONNX backend: the fitted pipeline, minus its encoder, run by ONNX Runtime.

At training time ``export_onnx`` converts ``pipeline[1:]`` (imputation, one-hot, scaling
and the estimator operate on floats) with skl2onnx and checks it on the holdout: labels
identical and probabilities within ``PARITY_TOLERANCE`` of scikit-learn, or the ONNX file
is not shipped and the manifest says why. At serving time ``OnnxPredictor`` encodes records
with ``RecordEncoder`` and runs the graph; neither imports scikit-learn.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import structlog

from ccml.core.artifact import ModelArtifact
from ccml.core.contracts import Predictor, Probabilities, Records
from ccml.core.errors import PredictionError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.models.encoding import FloatMatrix, RecordEncoder

log = structlog.get_logger(__name__)

ONNX_FILE = "model.onnx"
PARITY_TOLERANCE = 1e-5
# Batches at least this large run on a session that may use every core.
LARGE_BATCH = 2048


@contextlib.contextmanager
def _tree_ensemble_bool_fix() -> Iterator[None]:
    """skl2onnx 1.20 passes Python ``False`` for leaves' missing-value flag, which current
    onnx rejects in an int list ("Expected an int, got a boolean"), so histogram gradient
    boosting fails to convert. Cast it to int for the duration of a conversion."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def _session(graph: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _run(session: Any, matrix: FloatMatrix) -> tuple[Any, Probabilities]:
    labels, probabilities = session.run(None, {"input": matrix.astype(np.float32)})
    # float32 sums of tree votes can land a hair outside [0, 1] (1.0000001), which breaks the
    # Predictor contract and the API's response model.
    return labels, np.clip(np.asarray(probabilities[:, 1], dtype=np.float64), 0.0, 1.0)


def export_onnx(pipeline: Any, holdout: FloatMatrix) -> tuple[bytes | None, str]:
    """Convert ``pipeline[1:]`` and check parity on ``holdout`` (encoded rows).

    Returns the graph (or None) and a note for the manifest saying what happened.
    """
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        model = pipeline[1:]
        with _tree_ensemble_bool_fix():
            graph = convert_sklearn(
                model,
                initial_types=[("input", FloatTensorType([None, holdout.shape[1]]))],
                options={id(model[-1]): {"zipmap": False}},
            ).SerializeToString()
        labels, probabilities = _run(_session(graph, 1), holdout)
    except Exception as exc:  # any converter failure: ship without ONNX, say why
        log.warning("onnx_export_failed", error=str(exc)[:300])
        return None, f"not converted: {type(exc).__name__}: {str(exc)[:300]}"
    reference = model.predict_proba(holdout)[:, 1]
    expected_labels = model.predict(holdout)
    difference = float(np.max(np.abs(probabilities - reference))) if len(holdout) else 0.0
    same_labels = bool(np.array_equal(np.asarray(labels), expected_labels))
    if not same_labels or difference > PARITY_TOLERANCE:
        reason = f"max |p diff| {difference:.2e}, labels identical: {same_labels}"
        return None, f"not shipped: parity failed on the holdout ({reason})"
    return graph, f"converted; holdout parity: labels identical, max |p diff| {difference:.1e}"


class OnnxPredictor(Predictor):
    """Runs the version's ``model.onnx``: one intra-op thread for small requests (the
    process's workers are the parallelism), every core for large batches."""

    def __init__(self, artifact: ModelArtifact, threshold: float = 0.5) -> None:
        super().__init__(artifact, threshold)
        graph = artifact.files.get(ONNX_FILE)
        if graph is None:
            note = artifact.manifest.notes.get("onnx", "the version has no ONNX file")
            raise PredictionError(f"model {self.version} cannot be served by the onnx backend: {note}")
        self._graph = graph
        self._encoder = RecordEncoder(FeatureSchema.model_validate(artifact.manifest.schema_))
        self._small = _session(graph, 1)
        self._large: Any = None

    def _predict_proba(self, records: Records) -> Probabilities:
        matrix = self._encoder.encode(records)
        if len(matrix) >= LARGE_BATCH:
            if self._large is None:
                self._large = _session(self._graph, os.cpu_count() or 1)
            return _run(self._large, matrix)[1]
        return _run(self._small, matrix)[1]


def build_onnx_predictor(settings: Settings, artifact: ModelArtifact) -> Predictor:
    try:
        return OnnxPredictor(artifact, threshold=settings.decision_threshold)
    except PredictionError as exc:
        if not settings.onnx_fallback:
            raise
        from ccml.models.predictor import SklearnPredictor

        log.warning("onnx_fallback_to_sklearn", version=artifact.version, reason=str(exc))
        return SklearnPredictor(artifact, threshold=settings.decision_threshold)
