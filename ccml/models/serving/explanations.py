"""Explanations as answers: a prediction's top factors, and the live model's explainer.

``explanation`` turns the contributions of ``ccml.models.serving.explainer`` into the JSON the
API, ``ccml predict --explain`` and the at-risk list share: the method, the scale of the score,
the link to the probability, the bias, the score (bias + every contribution) and the ``top``
factors by size, each with the student's value as sent and whether it raises or lowers the
completion probability. A factor whose contribution is exactly zero moves nothing and is left
out, so an answer may hold fewer than ``top`` factors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import structlog

from ccml.core.artifact import ModelArtifact
from ccml.core.contracts import Predictor, Records
from ccml.core.errors import ExplanationUnavailableError, PredictionError
from ccml.core.model_files import EXPLAINER_FILE
from ccml.core.schema import FeatureSchema
from ccml.models.serving.explainer import Explainer

log = structlog.get_logger(__name__)

# The most factors one explanation may ask for (``?top=``, ``CCML_EXPLAIN_TOP``).
MAX_TOP: Final = 100


def load_explainer(artifact: ModelArtifact) -> Explainer | None:
    """The version's explainer, or None when it has no ``explainer.npz``.

    Raises:
        PredictionError: the file is there but is not a valid explainer.
    """
    data = artifact.files.get(EXPLAINER_FILE)
    if data is None:
        return None
    schema = FeatureSchema.model_validate(artifact.manifest.schema_)
    return Explainer.from_bytes(data, schema, str(artifact.version), artifact.max_file_bytes)


def require_explainer(artifact: ModelArtifact) -> Explainer:
    """The version's explainer; ``ExplanationUnavailableError`` (naming why) when it has none."""
    explainer = load_explainer(artifact)
    if explainer is None:
        why = artifact.manifest.notes.get("explainer", "it was trained before ccml wrote explanations")
        raise ExplanationUnavailableError(f"model {artifact.version} has no explanations ({why})")
    return explainer


def explanation(
    explainer: Explainer, record: Mapping[str, Any], contributions: list[float], top: int
) -> dict[str, Any]:
    """The explanation of one prediction from its contributions (schema feature order)."""
    sign = explainer.link.sign
    order = sorted(range(len(contributions)), key=lambda j: abs(contributions[j]), reverse=True)
    factors = []
    for j in order[:top]:
        contribution = contributions[j]
        if contribution == 0.0:
            break
        name = explainer.features[j]
        raises = contribution * sign > 0
        factors.append(
            {
                "feature": name,
                "value": record.get(name),
                "direction": "raises" if raises else "lowers",
                "contribution": contribution,
            }
        )
    return {
        "method": explainer.method,
        "scale": explainer.scale,
        "link": explainer.link.kind,
        "bias": explainer.bias,
        "score": explainer.bias + sum(contributions),
        "factors": factors,
    }


def explain_records(
    explainer: Explainer, records: Records, top: int, values: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The explanation of each record (mappings, or a DataFrame), in order, in one NumPy pass;
    ``values``: the records as mappings, for the factors' values (default: ``records`` themselves)."""
    contributions = explainer.explain(explainer.encoder.encode(records)).tolist()
    shown = values if values is not None else cast("Sequence[Mapping[str, Any]]", records)
    return [explanation(explainer, r, c, top) for r, c in zip(shown, contributions, strict=True)]


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def factors_text(explained: Mapping[str, Any]) -> str:
    """An explanation's factors on one line: ``completion_rate=20.86 lowers -0.187; ...``."""
    return "; ".join(
        f"{f['feature']}={_shown(f['value'])} {f['direction']} {f['contribution']:+.3g}" for f in explained["factors"]
    )


class ExplainerSlot:
    """The explainer of the live model, read from its version on the first explained request.

    One slot, replaced when the watcher has swapped the predictor: a request that races a swap
    may read the file once more, never explain with another version's explainer. A version whose
    explainer cannot be read (logged once) is treated as one without: explained requests get
    ``ExplanationUnavailableError``, plain ones are served as always.
    """

    def __init__(self, top: int) -> None:
        self.top = top
        self._slot: tuple[Predictor, Explainer | None, str] | None = None

    def explainer(self, predictor: Predictor) -> Explainer:
        """The explainer of ``predictor``'s version; ``ExplanationUnavailableError`` when it has none."""
        slot = self._slot
        if slot is None or slot[0] is not predictor:
            try:
                slot = (predictor, require_explainer(predictor.artifact), "")
            except PredictionError as exc:  # none, or a file that cannot be read: a 409 per request, not a 500
                if not isinstance(exc, ExplanationUnavailableError):
                    log.error("explainer_unreadable", version=predictor.version, error=str(exc)[:500])
                slot = (predictor, None, str(exc))
            self._slot = slot
        if slot[1] is None:
            raise ExplanationUnavailableError(slot[2])
        return slot[1]
