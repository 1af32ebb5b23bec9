"""The ONNX backend: the fitted estimator run by ONNX Runtime, without scikit-learn.

At training time ``export_onnx`` converts the pipeline after its encoder. For pipelines
built by ``build_feature_pipeline`` only the estimator is converted, and the feature step
(imputation, scaling, one-hot) travels as an ``InputPlan`` in the ONNX file's metadata:
ccml applies it in Python, which is cheaper per row than ONNX Runtime's preprocessing
nodes. Any other pipeline is converted whole. Either way the result is checked on the
holdout: labels identical and probabilities within ``PARITY_TOLERANCE`` of scikit-learn,
or the ONNX file is not shipped and the manifest says why. At serving time
``OnnxPredictor`` encodes records with ``RecordEncoder`` (and the plan) and runs the graph.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import structlog

from ccml.core.artifact import ModelArtifact
from ccml.core.contracts import Predictor, Probabilities, Records
from ccml.core.errors import PredictionError
from ccml.core.model_files import ONNX_FILE
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.models.encoding import FloatMatrix, RecordEncoder
from ccml.models.model_input import InputPlan

log = structlog.get_logger(__name__)

# The ONNX metadata key holding the InputPlan's JSON (absent: the graph takes encoded rows).
PLAN_KEY = "ccml.input_plan"
PARITY_TOLERANCE = 1e-5
PARITY_ROWS = 20_000
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
    # Idle pool threads would otherwise spin between runs, taking CPU from the event loop and
    # the other workers; measured no slower for 100k-row batches on two busy cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _completion(probabilities: Any) -> Probabilities:
    """ONNX Runtime's per-class probabilities -> the completion column, as float64 in [0, 1]."""
    # float32 sums of tree votes can land a hair outside [0, 1] (1.0000001), which breaks the
    # Predictor contract and the API's response model.
    return np.clip(np.asarray(probabilities[:, 1], dtype=np.float64), 0.0, 1.0)


def _convert(model: Any, width: int, plan: InputPlan | None) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    estimator = model[-1] if hasattr(model, "steps") else model
    with _tree_ensemble_bool_fix():
        proto = convert_sklearn(
            model,
            initial_types=[("input", FloatTensorType([None, width]))],
            # zipmap off: probabilities as a tensor, not a list of dicts per row.
            options={id(estimator): {"zipmap": False}},
        )
    if plan is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = PLAN_KEY, plan.to_json()
    return bytes(proto.SerializeToString())


def export_onnx(pipeline: Any, holdout: FloatMatrix, scores: Any) -> tuple[bytes | None, str]:
    """Convert ``pipeline[1:]`` (or its estimator plus an ``InputPlan``) and check parity on
    ``holdout`` (encoded rows; at most ``PARITY_ROWS`` of them) against ``scores``, scikit-learn's
    ``pipeline[1:].predict_proba(holdout)`` (the trainer has them already). Returns the graph
    (or None) and a note for the manifest."""
    model = pipeline[1:]
    # The holdout is already a random sample; beyond this many rows the check costs seconds
    # (1M-row tables: ~20 s) without telling more.
    holdout, scores = holdout[:PARITY_ROWS], scores[:PARITY_ROWS]
    try:
        plan = InputPlan.from_pipeline(pipeline)
        if plan is not None:
            graph = _convert(pipeline[-1], plan.width, plan)
            inputs = plan.transform(holdout)
        else:
            graph = _convert(model, holdout.shape[1], None)
            inputs = holdout
        session = _session(graph, os.cpu_count() or 1)
        labels, probabilities = session.run(None, {"input": inputs.astype(np.float32)})
        probabilities = _completion(probabilities)
    except Exception as exc:  # any converter failure: ship without ONNX, say why
        log.warning("onnx_export_failed", error=str(exc)[:300])
        return None, f"not converted: {type(exc).__name__}: {str(exc)[:300]}"
    reference = scores[:, 1]
    # What model.predict returns, without scoring the rows a second time.
    expected_labels = model.classes_[np.argmax(scores, axis=1)]
    difference = float(np.max(np.abs(probabilities - reference))) if len(holdout) else 0.0
    same_labels = bool(np.array_equal(np.asarray(labels), expected_labels))
    if not same_labels or difference > PARITY_TOLERANCE:
        reason = f"max |p diff| {difference:.2e}, labels identical: {same_labels}"
        return None, f"not shipped: parity failed on the holdout ({reason})"
    form = "estimator + input plan" if plan is not None else "whole graph"
    checked = f"{len(holdout):,} holdout rows"
    return graph, f"converted ({form}); parity on {checked}: labels identical, max |p diff| {difference:.1e}"


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
            self._small = _session(graph, 1)
            plan = self._small.get_modelmeta().custom_metadata_map.get(PLAN_KEY)
            self._plan = InputPlan.from_json(plan) if plan is not None else None
        except Exception as exc:  # ONNX Runtime's and the plan's parsers, fed bytes from a store
            raise PredictionError(f"model {self.version}: {ONNX_FILE} cannot be loaded: {exc}"[:500]) from exc
        self._large: Any = None
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
                self._large = _session(self._graph, os.cpu_count() or 1)
            session = self._large
        return _completion(session.run(self._outputs, {self._input: matrix.astype(np.float32)})[0])

    def _predict_one(self, record: Mapping[str, Any]) -> float:
        # The API's hot path: plain Python up to the session call, no NumPy ufuncs on a 1-row array.
        values = self._encoder.row(record)
        if self._plan is not None:
            values = self._plan.row(values)
        row = np.array([values], dtype=np.float32)
        probability = float(self._small.run(self._outputs, {self._input: row})[0][0, 1])
        return 0.0 if probability < 0.0 else 1.0 if probability > 1.0 else probability


def build_onnx_predictor(settings: Settings, artifact: ModelArtifact) -> Predictor:
    try:
        return OnnxPredictor(artifact, threshold=settings.decision_threshold)
    except PredictionError as exc:
        if not settings.onnx_fallback:
            raise
        from ccml.models.predictor import SklearnPredictor

        log.warning("onnx_fallback_to_sklearn", version=artifact.version, reason=str(exc))
        return SklearnPredictor(artifact, threshold=settings.decision_threshold)
