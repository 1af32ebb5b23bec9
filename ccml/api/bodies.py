"""Request and response bodies. The request body is generated from the feature schema."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from ccml.core.schema import FeatureSchema
from ccml.models.serving.records import record_model


class ErrorDetail(BaseModel):
    """One problem with the request, for a 422: the field (dotted path in the body) and why."""

    field: str = Field(description="Where in the body: a field name, or a dotted path such as instances.0.quiz_scores.")
    message: str = Field(description="What is wrong with it.")
    type: str = Field(description="pydantic's error type, stable for programs: missing, less_than_equal, ...")


class ErrorResponse(BaseModel):
    """Every error answer: a stable code, a message naming the field, and details."""

    code: str = Field(description="Stable, for programs: invalid_json, invalid_input, body_too_large, ...")
    message: str = Field(description="For people: names the field and the reason.")
    errors: list[ErrorDetail] = Field(default_factory=list, description="Each problem, for invalid_input.")


class HealthResponse(BaseModel):
    """The answer of ``/health``: the process is up, whether or not a model is loaded."""

    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    """The answer of ``/ready`` once a model is loaded: the version serving."""

    status: Literal["ready"] = "ready"
    model_version: str


class ReloadResponse(BaseModel):
    """The answer of ``/admin/reload``: whether the model changed, the version serving, and any load error."""

    changed: bool
    model_version: str | None
    error: str | None = None


class ExplanationFactor(BaseModel):
    """One feature's part in a prediction (``?explain=true``)."""

    feature: str = Field(description="A feature of the schema (never a one-hot column).")
    value: Any = Field(description="The student's value of it, as sent (null when missing).")
    direction: Literal["raises", "lowers"] = Field(
        description="Whether it raises or lowers the completion probability."
    )
    contribution: float = Field(description="Its share of the score, on the explanation's scale.")


class Explanation(BaseModel):
    """Why the model answered as it did: ``bias`` plus every feature's contribution is ``score``,
    which ``link`` maps to the probability (README "Reading an explanation")."""

    method: Literal["tree_path", "linear"] = Field(
        description="tree_path: contributions along the decision paths (forests, boosting); linear: coefficient "
        "times standardized value."
    )
    scale: Literal["probability", "log-odds"] = Field(description="The scale of bias, score and contributions.")
    link: Literal["identity", "logistic", "sigmoid_calibration", "isotonic_calibration"] = Field(
        description="How the score becomes the probability."
    )
    bias: float = Field(description="The score before any feature is known: the training population's.")
    score: float = Field(description="bias + the contributions of every feature (not only those listed).")
    factors: list[ExplanationFactor] = Field(description="The largest contributions, largest first (at most top).")


def _whole_number(value: object) -> object:
    # JSON Schema's "integer" is any number without a fractional part, 18.0 included; pydantic's
    # strict int refuses every float. A fractional float stays a float and gets the int error.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def api_record_model(schema: FeatureSchema) -> type[BaseModel]:
    """The record model of the API: the schema's strict record model (``ccml.models.serving.records``),
    except that an integer field, or a categorical one with integer categories, also takes an
    integral float (18.0), as the published JSON schema allows. Measured: ~0.35 µs per such
    field on a /predict, of ~1.6 µs for validating the whole record."""
    base = record_model(schema)
    whole = [
        feature.name
        for feature in schema.features
        if feature.type == "integer" or (feature.has_categories and isinstance(feature.category_list[0], int))
    ]
    fields: dict[str, Any] = {
        name: (Annotated[base.model_fields[name].annotation, BeforeValidator(_whole_number)], base.model_fields[name])
        for name in whole
    }
    return create_model(base.__name__, __base__=base, __doc__=base.__doc__, **fields)


class BodyModels:
    """The schema-specific request and response models of one app."""

    def __init__(self, schema: FeatureSchema, max_batch: int) -> None:
        self.schema = schema
        self.max_batch = max_batch
        labels = tuple(schema.target.labels)
        label_type: Any = Literal[labels]
        self.record = api_record_model(schema)
        # /predict reads its body itself (see routes.py); this documents it as FastAPI would.
        self.record_request_body = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{self.record.__name__}"}}},
        }
        example: dict[str, Any] = dict(schema.example_record())
        self.batch = create_model(
            "BatchRequest",
            __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [{"instances": [example, example]}]}),
            instances=(list[self.record], Field(min_length=1, max_length=max_batch)),  # type: ignore[name-defined]
        )
        self.item = create_model(
            "BatchPrediction",
            prediction=(label_type, Field(description="Predicted outcome.")),
            probability=(float, Field(ge=0, le=1, description="Probability of completion.")),
            explanation=(Explanation | None, Field(None, description="With ?explain=true only.")),
        )
        self.prediction = create_model(
            "PredictionResponse",
            __config__=ConfigDict(
                json_schema_extra={
                    "examples": [
                        {"prediction": labels[1], "probability": 0.87, "model_version": "20261127T161222.438905Z"}
                    ]
                }
            ),
            prediction=(label_type, Field(description="Predicted outcome.")),
            probability=(float, Field(ge=0, le=1, description="Probability of completion.")),
            model_version=(str, Field(description="The model version that computed this answer.")),
            explanation=(Explanation | None, Field(None, description="With ?explain=true only.")),
        )
        self.batch_response = create_model(
            "BatchPredictionResponse",
            predictions=(list[self.item], ...),  # type: ignore[name-defined]
            model_version=(str, Field(description="The model version that computed every answer.")),
        )
