"""Schema-generated validation of prediction records (shared by the API and the CLI).

``record_model(schema)`` builds a strict pydantic model: one required field per feature with
its type, range or allowed categories, description and example; unknown fields, NaN, +-inf,
and booleans or strings where a number is expected are all rejected with the field named.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from ccml.core.errors import InvalidInputError
from ccml.core.schema import Feature, FeatureSchema

if TYPE_CHECKING:
    import pandas as pd


def _reject_bool(value: object) -> object:
    # bool is a subclass of int: without this, true would pass as category 1.
    if isinstance(value, bool):
        raise ValueError("Input should be one of the listed categories, not a boolean")
    return value


def _field_type(feature: Feature) -> Any:
    description = feature.description + (f" ({feature.unit})" if feature.unit else "")
    if feature.labels:
        description += " Labels: " + ", ".join(f"{k} = {v}" for k, v in feature.labels.items()) + "."
    info = Field(description=description.strip(), examples=[feature.example_value()], title=feature.column)
    if feature.has_categories:
        literal = Literal[tuple(feature.category_list)]  # type: ignore[valid-type]
        return Annotated[literal, BeforeValidator(_reject_bool), info]
    if feature.type == "boolean":
        return Annotated[bool, info]
    low, high = feature.bounds
    base: type[int] | type[float] = int if feature.type == "integer" else float
    return Annotated[base, Field(ge=low, le=high, allow_inf_nan=False), info]


@lru_cache(maxsize=16)
def _cached_model(schema_json: str, allow_missing: bool) -> type[BaseModel]:
    # Keyed by the schema's JSON: a FeatureSchema holds lists, so it is not hashable itself.
    schema = FeatureSchema.model_validate_json(schema_json)
    fields: dict[str, Any] = {
        feature.name: (_field_type(feature) | None, None) if allow_missing else (_field_type(feature), ...)
        for feature in schema.features
    }
    return create_model(
        "StudentFeaturesWithGaps" if allow_missing else "StudentFeatures",
        __config__=ConfigDict(
            extra="forbid", strict=True, json_schema_extra={"examples": [dict(schema.example_record())]}
        ),
        __doc__=f"One student's features, as declared by the feature schema {schema.name!r}.",
        **fields,
    )


def record_model(schema: FeatureSchema, *, allow_missing: bool = False) -> type[BaseModel]:
    """The pydantic model of one prediction record for ``schema`` (cached per schema).

    ``allow_missing`` lets a field be absent or null (the pipeline imputes it): for batch
    scoring of exported tables; the API requires every field.
    """
    return _cached_model(schema.model_dump_json(), allow_missing)


def _native(value: Any, feature: Feature) -> Any:
    """A CSV cell as the plain Python value its feature expects (NaN -> None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    wants_int = feature.type == "integer" or (
        feature.has_categories and isinstance((feature.categories or [""])[0], int)
    )
    if wants_int and isinstance(value, float) and value.is_integer():
        return int(value)
    if feature.type == "numeric" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def records_from_frame(frame: pd.DataFrame, schema: FeatureSchema) -> list[dict[str, Any]]:
    """Rows of a CSV-shaped frame (source columns or feature names) as feature-name records."""
    records = []
    for row in frame.to_dict(orient="records"):
        record: dict[str, Any] = {}
        for feature in schema.features:
            if feature.column in row:
                record[feature.name] = _native(row[feature.column], feature)
            elif feature.name in row:
                record[feature.name] = _native(row[feature.name], feature)
        records.append(record)
    return records


def validate_records(raw: list[Any], schema: FeatureSchema, *, allow_missing: bool = False) -> list[dict[str, Any]]:
    """Validate records strictly; raise ``InvalidInputError`` naming record and field."""
    model = record_model(schema, allow_missing=allow_missing)
    problems: list[str] = []
    valid: list[dict[str, Any]] = []
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            problems.append(f"record {position}: expected an object, got {type(item).__name__}")
            continue
        try:
            valid.append(model.model_validate(item).model_dump())
        except ValueError as exc:
            for error in getattr(exc, "errors", list)():
                field = ".".join(map(str, error["loc"])) or "(record)"
                problems.append(f"record {position}: {field}: {error['msg']}")
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise InvalidInputError("invalid input:\n  " + "\n  ".join(shown))
    return valid
