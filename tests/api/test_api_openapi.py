"""The OpenAPI document tells the truth: status codes, content types, field constraints, and
a second schema file changes the API with no code change."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.core.components import build_model_store
from ccml.core.schema import FeatureSchema, load_schema
from ccml.core.settings import Settings

PREDICTION_ROUTES = ["/predict", "/predict/batch"]
ERROR_CODES = {"400", "413", "422", "503"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings]) -> dict[str, Any]:
    settings = make_settings(tmp_path_factory.mktemp("openapi") / "home", max_batch=7)
    with TestClient(create_app(settings)) as client:
        openapi: dict[str, Any] = client.get("/openapi.json").json()
        return openapi


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def request_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return resolve(document, body)


def assert_fields_match_schema(record: dict[str, Any], schema: FeatureSchema) -> None:
    assert set(record["properties"]) == set(schema.feature_names)
    assert set(record["required"]) == set(schema.feature_names)
    assert record["additionalProperties"] is False
    for feature in schema.features:
        field = record["properties"][feature.name]
        if feature.type == "categorical":
            assert field["enum"] == feature.category_list
        elif feature.type in ("numeric", "integer"):
            assert field["type"] == ("integer" if feature.type == "integer" else "number")
            assert (field["minimum"], field["maximum"]) == feature.bounds
        assert field["description"].startswith(feature.description)
        assert field["examples"] == [feature.example_value()]


@pytest.mark.parametrize("path", PREDICTION_ROUTES)
def test_prediction_routes_document_every_error_status_as_json_error_bodies(
    document: dict[str, Any], path: str
) -> None:
    responses = document["paths"][path]["post"]["responses"]

    assert set(responses) >= ERROR_CODES
    for code in ERROR_CODES:
        schema = responses[code]["content"]["application/json"]["schema"]
        assert resolve(document, schema)["title"] == "ErrorResponse"


def test_without_an_api_key_no_route_documents_401_or_security(document: dict[str, Any]) -> None:
    operations = [operation for item in document["paths"].values() for operation in item.values()]

    assert all("401" not in operation["responses"] for operation in operations)
    assert all("security" not in operation for operation in operations)
    assert "securitySchemes" not in document.get("components", {})


@pytest.mark.parametrize("path", ["/ready", "/model"])
def test_model_dependent_routes_document_503(document: dict[str, Any], path: str) -> None:
    assert "503" in document["paths"][path]["get"]["responses"]


def test_metrics_documents_prometheus_text_plain(document: dict[str, Any]) -> None:
    content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]

    assert any(media_type.startswith("text/plain") for media_type in content)


def test_predict_body_schema_has_every_schema_field_with_ranges_and_categories(document: dict[str, Any]) -> None:
    assert_fields_match_schema(request_schema(document, "/predict"), load_schema())


def test_batch_body_schema_bounds_the_number_of_instances(document: dict[str, Any]) -> None:
    instances = request_schema(document, "/predict/batch")["properties"]["instances"]

    assert (instances["minItems"], instances["maxItems"]) == (1, 7)
    assert resolve(document, instances["items"])["title"] == "StudentFeatures"


def test_response_schemas_document_label_and_probability_range(document: dict[str, Any]) -> None:
    response = document["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    properties = resolve(document, response)["properties"]

    assert properties["prediction"]["enum"] == list(load_schema().target.labels)
    assert (properties["probability"]["minimum"], properties["probability"]["maximum"]) == (0, 1)


@pytest.fixture(scope="module")
def second_document(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], second_schema_file: Path
) -> dict[str, Any]:
    settings = make_settings(tmp_path_factory.mktemp("openapi-kdd") / "home", schema_file=second_schema_file)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 503  # no champion: the document is built anyway
        openapi: dict[str, Any] = client.get("/openapi.json").json()
        return openapi


def test_second_schema_file_changes_the_documented_request_fields(
    second_document: dict[str, Any], second_schema_file: Path
) -> None:
    record = request_schema(second_document, "/predict")

    assert {"event_access", "active_days", "course"} <= set(record["properties"])
    assert "course_category" not in record["properties"]
    assert "course_category" not in json.dumps(second_document)
    assert_fields_match_schema(record, load_schema(second_schema_file))


def test_second_schema_example_is_the_documented_request_example(
    second_document: dict[str, Any], second_schema_file: Path
) -> None:
    record = request_schema(second_document, "/predict")

    assert record["examples"] == [load_schema(second_schema_file).example_record()]


@pytest.fixture(scope="module", params=["built-in-schema", "second-schema"])
def served_app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    make_settings: Callable[..., Settings],
    second_schema_file: Path,
) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """An app with a champion, for each schema, and its OpenAPI document."""
    built_in = request.param == "built-in-schema"
    trained = request.getfixturevalue("models" if built_in else "second_schema_models")
    settings = make_settings(
        tmp_path_factory.mktemp(request.param) / "home", schema_file=None if built_in else second_schema_file
    )
    trained.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as client:
        yield client, client.get("/openapi.json").json()


def probes(field: dict[str, Any], example: Any) -> tuple[list[Any], list[Any]]:
    """Values the documented field allows, and values it forbids, read from the document alone."""
    if "enum" in field:
        numeric = isinstance(field["enum"][0], int)
        return list(field["enum"]), [True, None, "no-such-category", 10**6 if numeric else 1]
    low, high = field["minimum"], field["maximum"]
    if field["type"] == "integer":
        return [int(low), int(high), example], [int(low) - 1, int(high) + 1, 1.5, True, str(example), None]
    return [low, high, float(example)], [low - 0.001, high + 0.001, True, str(example), None]


def test_every_documented_field_accepts_what_the_document_allows_and_rejects_the_rest(
    served_app: tuple[TestClient, dict[str, Any]],
) -> None:
    """What a client generated from the document, or a fuzzer reading it, would send."""
    client, openapi = served_app
    record = request_schema(openapi, "/predict")
    example = record["examples"][0]

    assert client.post("/predict", json=example).status_code == 200
    for name, field in record["properties"].items():
        allowed, forbidden = probes(field, example[name])
        for value in allowed:
            response = client.post("/predict", json={**example, name: value})
            assert response.status_code == 200, (name, value, response.text)
        for value in forbidden:
            response = client.post("/predict", json={**example, name: value})
            assert response.status_code == 422, (name, value, response.text)
            assert name in response.json()["message"]


def test_an_app_serves_only_records_of_its_own_schema(
    served_app: tuple[TestClient, dict[str, Any]], second_schema_file: Path
) -> None:
    client, openapi = served_app
    own = request_schema(openapi, "/predict")["examples"][0]
    other = next(
        schema.example_record()
        for schema in (load_schema(), load_schema(second_schema_file))
        if set(schema.feature_names) != set(own)
    )

    assert client.post("/predict", json=own).status_code == 200
    response = client.post("/predict", json=other)
    assert response.status_code == 422
    assert any(error["type"] == "extra_forbidden" for error in response.json()["errors"])
