"""Request and response bodies. The request body is generated from the feature schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ccml.core.schema import FeatureSchema
from ccml.models.records import record_model


class ErrorResponse(BaseModel):
    """Every error answer: a stable code, a message naming the field, and details."""

    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["body.quiz_scores: Input should be less than or equal to 100"])
    errors: list[dict[str, Any]] = Field(default_factory=list)


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    model_version: str


class ReloadResponse(BaseModel):
    changed: bool
    model_version: str | None
    error: str | None = None


class BodyModels:
    """The schema-specific request and response models of one app."""

    def __init__(self, schema: FeatureSchema, max_batch: int) -> None:
        labels = tuple(schema.target.labels)
        label_type: Any = Literal[labels]
        self.record = record_model(schema)
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
        )
        self.batch_response = create_model(
            "BatchPredictionResponse",
            predictions=(list[self.item], ...),  # type: ignore[name-defined]
            model_version=(str, Field(description="The model version that computed every answer.")),
        )
