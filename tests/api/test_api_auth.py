"""The optional API key: every route but health, readiness and the docs needs X-API-Key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.api.body import body_limit
from ccml.core.components import build_model_store
from ccml.core.schema import load_schema
from ccml.core.settings import Settings

KEY = "s3cret"
EXAMPLE = load_schema().example_record()

PROTECTED = [
    pytest.param("POST", "/predict", EXAMPLE, id="predict"),
    pytest.param("POST", "/predict/batch", {"instances": [EXAMPLE]}, id="predict-batch"),
    pytest.param("GET", "/model", None, id="model"),
    pytest.param("GET", "/metrics", None, id="metrics"),
    pytest.param("POST", "/admin/reload", None, id="admin-reload"),
]
OPEN = ["/health", "/ready", "/docs", "/openapi.json"]


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("auth") / "home", api_key=KEY)
    models.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401
    assert response.json()["code"] == "http_401"
    assert "X-API-Key" in response.json()["message"]
    assert response.headers["www-authenticate"] == "APIKey"
    assert KEY not in response.text


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_protected_route_without_a_key_answers_401(client: TestClient, method: str, path: str, body: Any) -> None:
    assert_unauthorized(client.request(method, path, json=body))


@pytest.mark.parametrize("wrong", ["wrong", "s3cre", "s3cret ", "S3CRET", "s3crets", ""])
@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_protected_route_with_a_wrong_key_answers_401(
    client: TestClient, method: str, path: str, body: Any, wrong: str
) -> None:
    assert_unauthorized(client.request(method, path, json=body, headers={"X-API-Key": wrong}))


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_protected_route_with_the_right_key_answers_200(client: TestClient, method: str, path: str, body: Any) -> None:
    response = client.request(method, path, json=body, headers={"X-API-Key": KEY})

    assert response.status_code == 200, response.text


def test_key_header_name_is_case_insensitive(client: TestClient) -> None:
    assert client.get("/model", headers={"x-api-key": KEY}).status_code == 200


def test_key_in_another_header_or_the_query_is_not_accepted(client: TestClient) -> None:
    assert_unauthorized(client.get("/model", headers={"Authorization": f"Bearer {KEY}"}))
    assert_unauthorized(client.get("/model", params={"api_key": KEY}))


@pytest.mark.parametrize("path", OPEN)
def test_health_ready_and_docs_are_open_without_a_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_a_bad_body_without_a_key_answers_401_not_422(client: TestClient) -> None:
    """An anonymous caller learns nothing about the schema from validation errors."""
    assert_unauthorized(client.post("/predict", json={"unknown": 1}))


def test_openapi_document_has_an_api_key_security_scheme(client: TestClient) -> None:
    components = client.get("/openapi.json").json()["components"]

    schemes = components["securitySchemes"]
    assert [(scheme["type"], scheme["in"], scheme["name"]) for scheme in schemes.values()] == [
        ("apiKey", "header", "X-API-Key")
    ]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_openapi_documents_401_and_security_on_protected_routes(
    client: TestClient, method: str, path: str, body: Any
) -> None:
    operation = client.get("/openapi.json").json()["paths"][path][method.lower()]

    assert "401" in operation["responses"]
    assert operation["security"]


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_openapi_documents_no_security_on_open_routes(client: TestClient, path: str) -> None:
    operation = client.get("/openapi.json").json()["paths"][path]["get"]

    assert "401" not in operation["responses"]
    assert "security" not in operation


# This app's body limit: the default, sized for CCML_MAX_BATCH of the schema's largest records.
OVER_THE_LIMIT = body_limit(load_schema(), Settings().max_batch, None) + 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/predict", b" " * OVER_THE_LIMIT, id="predict-content-length"),
        pytest.param("/predict/batch", b" " * OVER_THE_LIMIT, id="batch-content-length"),
        pytest.param("/predict/batch", lambda: iter([b" " * 1024**2] * (OVER_THE_LIMIT // 1024**2 + 1)), id="chunked"),
        pytest.param("/predict/batch", b"{not json", id="batch-invalid-json"),
        pytest.param("/predict/batch", b'{"instances": [{"unknown": 1}]}', id="batch-invalid-record"),
    ],
)
def test_without_a_key_the_answer_is_401_before_any_body_check(client: TestClient, path: str, body: Any) -> None:
    """The key is checked first: an anonymous caller learns neither the body limit nor the schema."""
    content = body() if callable(body) else body

    assert_unauthorized(client.post(path, content=content, headers={"content-type": "application/json"}))


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_with_the_key_an_oversize_body_gets_413(client: TestClient, path: str) -> None:
    headers = {"content-type": "application/json", "X-API-Key": KEY}

    response = client.post(path, content=b" " * OVER_THE_LIMIT, headers=headers)

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
