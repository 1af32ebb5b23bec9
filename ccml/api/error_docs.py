"""The error answers as the OpenAPI document shows them: one example per status, made by the
code that makes the real answer (``ccml.api.errors.response_for``), so the document cannot
drift from what the server sends."""

from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from ccml.api.auth import unauthorized
from ccml.api.bodies import BodyModels, ErrorResponse
from ccml.api.body import body_limit, too_large_message, too_slow_message
from ccml.api.deps import NO_MODEL_MESSAGE
from ccml.api.errors import response_for
from ccml.api.predict import parse_body
from ccml.core.errors import ExplanationUnavailableError, ModelNotLoadedError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings

Responses = dict[int | str, dict[str, Any]]
# Cut short inside the first value: what a client that builds JSON by hand sends.
INVALID_JSON = b'{"instances": [{"'


def answer_to(exc: Exception) -> dict[str, Any]:
    """The JSON body the server answers ``exc`` with."""
    body: dict[str, Any] = json.loads(bytes(response_for(exc).body))
    return body


def invalid_record(schema: FeatureSchema) -> dict[str, Any]:
    """The example record with its first ranged field just over the maximum (else without its first field)."""
    record = dict(schema.example_record())
    ranged = next((feature for feature in schema.features if feature.type in ("numeric", "integer")), None)
    if ranged is None:
        del record[schema.features[0].name]
    else:
        high = ranged.bounds[1]
        record[ranged.name] = int(high) + 1 if ranged.type == "integer" else high + 1
    return record


def _refusal(model: type[BaseModel], document: bytes) -> RequestValidationError:
    try:
        parse_body(model, document, "application/json")
    except RequestValidationError as exc:
        return exc
    raise AssertionError(f"{model.__name__} accepted the refusal example {document!r}")


def _response(description: str, exc: Exception) -> dict[str, Any]:
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {"application/json": {"example": answer_to(exc)}},
    }


class ErrorDocs:
    """The ``responses`` of each kind of route, for FastAPI's route decorators."""

    def __init__(
        self,
        schema: FeatureSchema,
        record: type[BaseModel],
        batch: type[BaseModel],
        *,
        body_limit: int,
        body_timeout_s: float,
        api_key: bool,
    ) -> None:
        bad = json.dumps(invalid_record(schema)).encode()
        self.unauthorized: Responses = (
            {401: _response("Missing or wrong X-API-Key header.", unauthorized())} if api_key else {}
        )
        self.no_model: Responses = {503: _response("No model is loaded yet.", ModelNotLoadedError(NO_MODEL_MESSAGE))}
        body: Responses = {
            408: _response(
                f"The body did not arrive within CCML_BODY_TIMEOUT_S ({body_timeout_s:g} s here); "
                "the connection is closed.",
                HTTPException(408, too_slow_message(body_timeout_s)),
            ),
            413: _response(
                f"The body is larger than CCML_MAX_BODY_BYTES ({body_limit} bytes here).",
                HTTPException(413, too_large_message(body_limit)),
            ),
        }
        invalid = (
            "A field is missing, unknown, of the wrong type or out of range, or a query parameter "
            "(`explain`, `top`) has a bad value; each is in `errors`."
        )
        unexplained = ExplanationUnavailableError(
            "model 20261201T120000.000000Z has no explanations (none: PluginModel is not a scikit-learn "
            "pipeline ccml can read)"
        )
        no_explainer: Responses = {
            409: _response("`explain=true`, but the version serving has no explanations.", unexplained)
        }
        self.predict: Responses = {
            400: _response("The body is not valid JSON.", _refusal(record, INVALID_JSON)),
            **body,
            422: _response(invalid, _refusal(record, bad)),
            **no_explainer,
            **self.no_model,
            **self.unauthorized,
        }
        self.batch: Responses = {
            400: _response("The body is not valid JSON.", _refusal(batch, INVALID_JSON)),
            **body,
            422: _response(invalid, _refusal(batch, b'{"instances": [' + bad + b"]}")),
            **no_explainer,
            **self.no_model,
            **self.unauthorized,
        }

    @classmethod
    def defaults(cls, bodies: BodyModels, *, api_key: bool) -> ErrorDocs:
        """The answers under the default body limits."""
        return cls(
            bodies.schema,
            bodies.record,
            bodies.batch,
            body_limit=body_limit(bodies.schema, bodies.max_batch, None),
            body_timeout_s=Settings.model_fields["body_timeout_s"].default,
            api_key=api_key,
        )
