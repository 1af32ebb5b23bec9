"""A version's model files: which names may exist, and how a fitted pipeline is written and read.

Pipelines are stored with skops.io, which rebuilds objects from a JSON description and refuses
every type that is neither on skops's own safe list (scikit-learn estimators, NumPy arrays)
nor on ``TRUSTED_TYPES``; nothing in the file is unpickled. Versions saved before ccml used
skops hold a pickle (``model.joblib``): unpickling runs any code in the file, so those load
only when the manifest's HMAC signature was verified, or when the operator opted in.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any, Final

from ccml.core.errors import ArtifactIntegrityError

SKOPS_FILE: Final = "model.skops"
PICKLE_FILE: Final = "model.joblib"  # versions saved before skops
ONNX_FILE: Final = "model.onnx"
REPORT_FILE: Final = "report.html"  # the evaluation report: served as a page, never run
# A manifest may name only these files: a name is a key in the store, never a path to follow.
ARTIFACT_FILES: Final = frozenset({SKOPS_FILE, PICKLE_FILE, ONNX_FILE, REPORT_FILE})

# Types a ccml pipeline holds beyond skops's defaults, each reviewed: SchemaEncoder keeps only
# plain data (its schema as a dict) in the file and rebuilds its encoder on load; a tree's and a
# histogram predictor's state are NumPy arrays; a dtype is a dtype; a calibrated model's wrapper
# holds its fitted estimator and calibrators, and a sigmoid calibrator two floats (a_, b_).
TRUSTED_TYPES: Final = (
    "ccml.models.training.features.SchemaEncoder",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)
_ENCODER = "ccml.models.training.features.SchemaEncoder"


def _untrusted(data: bytes) -> list[str]:
    import skops.io as sio

    return sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))


def dump_pipeline(pipeline: Any) -> bytes:
    """A fitted pipeline as skops bytes; refuses a pipeline that would not load again."""
    import skops.io as sio

    data: bytes = sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)
    untrusted = _untrusted(data)
    if untrusted:
        raise ArtifactIntegrityError(
            f"the fitted pipeline holds types outside ccml's trusted list: {untrusted}; "
            "review them and add them to ccml.core.model_files.TRUSTED_TYPES"
        )
    return data


def _check_archive(data: bytes, version: str, max_bytes: int) -> None:
    # A small zip can inflate to gigabytes: refuse before skops decompresses anything.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ArtifactIntegrityError(f"model {version}: {SKOPS_FILE} is not a skops archive: {exc}") from exc
    if inflated > max_bytes:
        raise ArtifactIntegrityError(f"model {version}: {SKOPS_FILE} inflates to {inflated} bytes (limit {max_bytes})")


def _check_pipeline(pipeline: Any, version: str) -> None:
    steps = getattr(pipeline, "steps", None)
    first = steps[0][1] if isinstance(steps, list) and steps and isinstance(steps[0], tuple) else None
    name = f"{type(first).__module__}.{type(first).__qualname__}"
    classes = list(getattr(pipeline, "classes_", ()))
    if name != _ENCODER or not callable(getattr(pipeline, "predict_proba", None)) or 1 not in classes:
        raise ArtifactIntegrityError(
            f"model {version}: the stored object is not a ccml pipeline (a SchemaEncoder first, classes 0 and 1)"
        )


def load_pipeline(data: bytes, version: str, max_bytes: int) -> Any:
    """Rebuild a pipeline from skops bytes, refusing any type outside the trusted lists."""
    import skops.io as sio

    _check_archive(data, version, max_bytes)
    try:
        untrusted = _untrusted(data)
    except Exception as exc:  # the boundary of a third-party parser fed bytes from a store
        raise ArtifactIntegrityError(f"model {version}: {SKOPS_FILE} is unreadable: {exc}"[:500]) from exc
    if untrusted:
        raise ArtifactIntegrityError(
            f"model {version}: {SKOPS_FILE} names types outside ccml's trusted list {untrusted[:5]}: refused"
        )
    try:
        pipeline = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # same boundary: a malformed state must not escape as a crash
        raise ArtifactIntegrityError(f"model {version}: {SKOPS_FILE} could not be rebuilt: {exc}"[:500]) from exc
    _check_pipeline(pipeline, version)
    return pipeline


# Where the classes pickled by earlier ccml releases live now (pickles name their module).
_MOVED_MODULES: Final = {
    "ccml.models.features": "ccml.models.training.features",
    "ccml.models.encoding": "ccml.models.serving.encoding",
}


def load_pickle(data: bytes, version: str) -> Any:
    """Unpickle a pre-skops version. Callers must have authenticated ``data`` first."""
    import importlib
    import sys

    import joblib

    for old, new in _MOVED_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))
    try:
        pipeline = joblib.load(io.BytesIO(data))
    except Exception as exc:  # a damaged (but authenticated) pickle is a bad artifact, not a crash
        raise ArtifactIntegrityError(f"model {version}: {PICKLE_FILE} could not be unpickled: {exc}"[:500]) from exc
    _check_pipeline(pipeline, version)
    return pipeline
