"""The OpenAPI error examples are what the server answers: each documented status of the
prediction routes has its own example, and provoking that status gives exactly that body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.api.error_docs import INVALID_JSON, invalid_record
from ccml.core.components import build_model_store
from ccml.core.schema import load_schema
from ccml.core.settings import Settings

SCHEMA = load_schema()
KEY = "examples-key"
LIMIT = 4096
TIMEOUT_S = 0.2
JSON = {"content-type": "application/json"}
CODES = {400: "invalid_json", 401: "http_401", 408: "body_timeout", 413: "body_too_large", 422: "invalid_input"}
CODES[503] = "model_not_loaded"
ROUTES = ["/predict", "/predict/batch"]


def wrap(path: str, record: Any) -> Any:
    return {"instances": [record]} if path == "/predict/batch" else record


@pytest.fixture(scope="module")
def apps(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[dict[str, TestClient]]:
    """With a champion and an API key; and with no model at all (for 503)."""
    home = tmp_path_factory.mktemp("examples")
    served = make_settings(home / "served", api_key=KEY, max_body_bytes=LIMIT, body_timeout_s=TIMEOUT_S)
    models.publish(build_model_store(served))
    empty = make_settings(home / "empty", max_body_bytes=LIMIT, body_timeout_s=TIMEOUT_S)
    with TestClient(create_app(served)) as keyed, TestClient(create_app(empty)) as no_model:
        yield {"keyed": keyed, "no-model": no_model}


def example(client: TestClient, path: str, status: int) -> dict[str, Any]:
    operation = client.get("/openapi.json").json()["paths"][path]["post"]
    documented: dict[str, Any] = operation["responses"][str(status)]["content"]["application/json"]["example"]
    return documented


def stalled_answer(app: FastAPI, path: str) -> tuple[int, dict[str, Any]]:
    """Call the app directly with a body that never arrives; return the status and JSON it sends."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        await asyncio.Event().wait()  # the rest of the body never comes
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", b"100"), (b"x-api-key", KEY.encode())]
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": headers}
    scope.update(query_string=b"", http_version="1.1", scheme="http", server=("test", 80), client=("test", 1))
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], json.loads(body)


@pytest.mark.parametrize("path", ROUTES)
def test_each_error_status_has_its_own_example_with_its_own_code(apps: dict[str, TestClient], path: str) -> None:
    examples = {status: example(apps["keyed"], path, status) for status in CODES}

    assert {status: document["code"] for status, document in examples.items()} == CODES
    assert all(examples[status]["errors"] == [] for status in CODES if status != 422)
    assert examples[422]["errors"]
    assert all(set(item) == {"field", "message", "type"} for item in examples[422]["errors"])


@pytest.mark.parametrize("path", ROUTES)
def test_every_documented_error_example_is_the_real_answer(apps: dict[str, TestClient], path: str) -> None:
    keyed, no_model = apps["keyed"], apps["no-model"]
    auth = {"X-API-Key": KEY}
    answers = {
        400: keyed.post(path, content=INVALID_JSON, headers={**JSON, **auth}),
        401: keyed.post(path, json=wrap(path, SCHEMA.example_record())),
        413: keyed.post(path, content=b" " * (LIMIT + 1), headers={**JSON, **auth}),
        422: keyed.post(path, json=wrap(path, invalid_record(SCHEMA)), headers=auth),
        503: no_model.post(path, json=wrap(path, SCHEMA.example_record())),
    }

    for status, response in answers.items():
        assert response.status_code == status, response.text
        assert response.json() == example(keyed, path, status), status
    assert stalled_answer(keyed.app, path) == (408, example(keyed, path, 408))  # type: ignore[arg-type]


def test_the_422_example_names_a_field_of_the_schema(apps: dict[str, TestClient]) -> None:
    for path, prefix in [("/predict", ""), ("/predict/batch", "instances.0.")]:
        [item] = example(apps["keyed"], path, 422)["errors"]
        assert item["field"].removeprefix(prefix) in SCHEMA.feature_names
        assert item["field"] in example(apps["keyed"], path, 422)["message"]


def test_error_items_are_a_typed_model_in_the_document(apps: dict[str, TestClient]) -> None:
    schemas = apps["keyed"].get("/openapi.json").json()["components"]["schemas"]

    items = schemas["ErrorResponse"]["properties"]["errors"]["items"]
    detail = schemas[items["$ref"].rsplit("/", 1)[-1]]
    assert {name: field["type"] for name, field in detail["properties"].items()} == {
        "field": "string",
        "message": "string",
        "type": "string",
    }
    assert set(detail["required"]) == {"field", "message", "type"}


def test_the_413_and_408_descriptions_give_this_apps_limits(apps: dict[str, TestClient]) -> None:
    responses = apps["keyed"].get("/openapi.json").json()["paths"]["/predict"]["post"]["responses"]

    assert f"{LIMIT} bytes" in responses["413"]["description"]
    assert f"{TIMEOUT_S:g} s" in responses["408"]["description"]
