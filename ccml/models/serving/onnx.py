"""The ONNX backend: a version's ``model.onnx`` run by ONNX Runtime, without scikit-learn.

``OnnxPredictor`` encodes records with ``RecordEncoder`` and, when the graph's metadata holds
one, the ``InputPlan`` (the fitted impute/scale/one-hot step as data), then runs the graph.
The graph is made at training time by ``ccml.models.training.export``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import structlog

from ccml.core.artifact import ModelArtifact
from ccml.core.contracts import Predictor, Probabilities, Records
from ccml.core.decision import served_threshold
from ccml.core.errors import PredictionError
from ccml.core.model_files import ONNX_FILE
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.models.serving.calibration_map import CALIBRATION_KEY, CalibrationMap
from ccml.models.serving.encoding import RecordEncoder
from ccml.models.serving.input_plan import InputPlan

log = structlog.get_logger(__name__)

# The ONNX metadata key holding the InputPlan's JSON (absent: the graph takes encoded rows).
PLAN_KEY = "ccml.input_plan"
# Batches at least this large run on a session that may use every core.
LARGE_BATCH = 2048


def ort_session(graph: bytes, threads: int) -> Any:
    """Return an ONNX Runtime CPU session for ``graph`` with ``threads`` intra-op threads that do not spin when idle.

    Raises whatever ONNX Runtime raises for a graph it cannot load.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads would otherwise spin between runs, taking CPU from the event loop and
    # the other workers; measured no slower for 100k-row batches on two busy cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def completion_column(probabilities: Any, calibration: CalibrationMap | None = None) -> Probabilities:
    """ONNX Runtime's per-class output -> the completion column, as float64 in [0, 1] (through the
    calibration map of a calibrated version, whose graph outputs the base model's scores)."""
    column = np.asarray(probabilities[:, 1], dtype=np.float64)
    if calibration is not None:
        column = calibration.apply(column)
    # float32 sums of tree votes can land a hair outside [0, 1] (1.0000001), which breaks the
    # Predictor contract and the API's response model.
    return np.clip(column, 0.0, 1.0)


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
        try:
            self._small = ort_session(graph, 1)
            metadata = self._small.get_modelmeta().custom_metadata_map
            plan, calibration = metadata.get(PLAN_KEY), metadata.get(CALIBRATION_KEY)
            self._plan = InputPlan.from_json(plan) if plan is not None else None
            self._calibration = CalibrationMap.from_json(calibration) if calibration is not None else None
        except Exception as exc:  # ONNX Runtime's and the plan's parsers, fed bytes from a store
            raise PredictionError(f"model {self.version}: {ONNX_FILE} cannot be loaded: {exc}"[:500]) from exc
        self._large: Any = None
        # The one-row path calls the C++ session under the Python wrapper: the wrapper's run checks
        # the feed's names, OrtValue ownership, graph capture and EP fallback on every call (about
        # 5 µs of a ~12 µs call, measured), none of which applies to one fixed float32 CPU input.
        # A build without it keeps the public call.
        self._run_one = getattr(getattr(self._small, "_sess", None), "run", None) or self._small.run
        self._input = self._small.get_inputs()[0].name
        outputs = [output.name for output in self._small.get_outputs()]
        # Ask for the probabilities only: skl2onnx names them "probabilities", second output.
        self._outputs = ["probabilities"] if "probabilities" in outputs else outputs[-1:]

    def _predict_proba(self, records: Records) -> Probabilities:
        matrix = self._encoder.encode(records)
        if self._plan is not None:
            matrix = self._plan.transform(matrix)
        session = self._small
        if len(matrix) >= LARGE_BATCH:
            if self._large is None:
                self._large = ort_session(self._graph, os.cpu_count() or 1)
            session = self._large
        return completion_column(
            session.run(self._outputs, {self._input: matrix.astype(np.float32)})[0], self._calibration
        )

    def _predict_one(self, record: Mapping[str, Any]) -> float:
        # The API's hot path: plain Python up to the session call, no NumPy ufuncs on a 1-row array.
        values = self._encoder.row(record)
        if self._plan is not None:
            values = self._plan.row(values)
        row = np.array([values], dtype=np.float32)
        probability = float(self._run_one(self._outputs, {self._input: row}, None)[0][0, 1])
        if self._calibration is not None:
            probability = self._calibration.one(probability)
        return 0.0 if probability < 0.0 else 1.0 if probability > 1.0 else probability


def build_onnx_predictor(settings: Settings, artifact: ModelArtifact) -> Predictor:
    """Return the ONNX predictor for ``artifact``, at the configured decision threshold.

    With ``CCML_ONNX_FALLBACK`` set, a version without a usable ONNX graph is served by the
    scikit-learn predictor instead (logged).

    Raises:
        PredictionError: the version has no usable ``model.onnx`` and the fallback is off.
    """
    try:
        return OnnxPredictor(
            artifact, threshold=served_threshold(artifact.manifest.decision, settings.decision_threshold)
        )
    except PredictionError as exc:
        if not settings.onnx_fallback:
            raise
        from ccml.models.serving.sklearn import SklearnPredictor

        log.warning("onnx_fallback_to_sklearn", version=artifact.version, reason=str(exc))
        return SklearnPredictor(
            artifact, threshold=served_threshold(artifact.manifest.decision, settings.decision_threshold)
        )
