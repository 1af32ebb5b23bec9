"""``POST /predict`` is one route, ``PredictEndpoint``, documented in OpenAPI by a FastAPI route of
the same models that is never routed. Its answers match what FastAPI gives for the same body
model (a reference app validating it the FastAPI way), for valid and invalid requests alike."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ccml.api import create_app
from ccml.api.bodies import BodyModels
from ccml.api.deps import live_predictor
from ccml.api.errors import register_error_handlers
from ccml.api.metrics import ApiMetrics
from ccml.api.predict import PredictEndpoint, count_and_label
from ccml.core.components import build_model_store, build_predictor
from ccml.core.schema import load_schema
from ccml.core.settings import Settings
from ccml.models.serving.watcher import ChampionWatcher

SCHEMA = load_schema()
EXAMPLE = dict(SCHEMA.example_record())
KEY = "s3cret-key"

# (body, headers) -> the same status and error from both paths.
CASES: list[Any] = [
    pytest.param(json.dumps(EXAMPLE), {}, id="valid"),
    pytest.param(json.dumps({**EXAMPLE, "quiz_scores": 101}), {}, id="out-of-range"),
    pytest.param(json.dumps({**EXAMPLE, "course_category": "Cooking"}), {}, id="unknown-category"),
    pytest.param(json.dumps({k: v for k, v in EXAMPLE.items() if k != "device_type"}), {}, id="missing-field"),
    pytest.param(json.dumps({**EXAMPLE, "extra": 1}), {}, id="unknown-field"),
    pytest.param(json.dumps({**EXAMPLE, "time_spent_on_course": "12"}), {}, id="string-for-number"),
    pytest.param(json.dumps({**EXAMPLE, "number_of_videos_watched": 18.0}), {}, id="integral-float-for-integer"),
    pytest.param(json.dumps({**EXAMPLE, "number_of_videos_watched": 18.5}), {}, id="fractional-float-for-integer"),
    pytest.param(json.dumps({**EXAMPLE, "device_type": 1.0}), {}, id="integral-float-for-integer-category"),
    pytest.param("{not json", {}, id="invalid-json"),
    pytest.param("", {}, id="empty-body"),
    pytest.param("[1, 2]", {}, id="array"),
    pytest.param(json.dumps(EXAMPLE), {"content-type": "text/plain"}, id="text-plain"),
]


def _reference_app(settings: Settings) -> FastAPI:
    """A plain FastAPI route that validates the same record model the FastAPI way."""
    schema = settings.feature_schema()
    watcher = ChampionWatcher(build_model_store(settings), lambda a: build_predictor(settings, a), schema)
    watcher.check()
    bodies = BodyModels(schema, settings.max_batch)
    metrics = ApiMetrics()
    record_model: Any = bodies.record
    app = FastAPI()
    register_error_handlers(app)

    async def predict(body: Any) -> dict[str, Any]:
        predictor = live_predictor(watcher, {})
        answer = count_and_label(predictor, metrics, predictor.predict_one(vars(body)))
        return {**answer, "model_version": predictor.version}

    # This module's annotations are strings (__future__): give FastAPI the body model itself.
    predict.__annotations__["body"] = record_model
    app.add_api_route("/predict", predict, methods=["POST"])
    return app


@pytest.fixture(scope="module")
def clients(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[tuple[TestClient, TestClient]]:
    settings = make_settings(tmp_path_factory.mktemp("predict-endpoint") / "home")
    models.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as fast, TestClient(_reference_app(settings)) as routed:
        yield fast, routed


@pytest.mark.parametrize(("body", "headers"), CASES)
def test_predict_answers_as_fastapi_validating_the_same_model_does(
    clients: tuple[TestClient, TestClient], body: str, headers: dict[str, str]
) -> None:
    fast, routed = clients
    headers = {"content-type": "application/json", **headers}

    answers = [client.post("/predict", content=body, headers=headers) for client in (fast, routed)]

    assert answers[0].status_code == answers[1].status_code
    assert answers[0].headers["content-type"] == "application/json"
    ours, fastapis = answers[0].json(), answers[1].json()
    if answers[0].status_code == 200:
        assert ours == fastapis
    else:  # the same error and fields; wording may differ where the JSON parsers word it differently
        assert ours["code"] == fastapis["code"]
        assert [e["field"] for e in ours["errors"]] == [e["field"] for e in fastapis["errors"]]


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        (json.dumps({**EXAMPLE, "quiz_scores": 101}), {}, 422, "quiz_scores"),
        ("", {}, 422, "body"),
        (json.dumps(EXAMPLE), {"content-type": "text/plain"}, 422, "body"),
        (json.dumps(EXAMPLE), {"content-type": "application/vnd.api+json"}, 200, None),
        ("{not json", {}, 400, None),
    ],
)
def test_fast_path_errors_name_the_field(
    clients: tuple[TestClient, TestClient], body: str, headers: dict[str, str], status: int, field: str | None
) -> None:
    fast, _ = clients

    response = fast.post("/predict", content=body, headers={"content-type": "application/json", **headers})

    assert response.status_code == status, response.text
    if field is not None:
        assert response.json()["errors"][0]["field"] == field
        assert field in response.json()["message"]


def test_text_plain_is_refused_with_the_reason(clients: tuple[TestClient, TestClient]) -> None:
    fast, _ = clients

    response = fast.post("/predict", content=json.dumps(EXAMPLE), headers={"content-type": "text/plain"})

    assert response.status_code == 422
    assert "Content-Type must be application/json, got text/plain" in response.json()["message"]


def test_other_methods_on_predict_still_reach_fastapi(clients: tuple[TestClient, TestClient]) -> None:
    fast, _ = clients

    assert fast.get("/predict").status_code == 405
    assert fast.post("/predict/batch", json={"instances": [EXAMPLE]}).status_code == 200


def test_openapi_documents_the_predict_body(clients: tuple[TestClient, TestClient]) -> None:
    fast, _ = clients

    document = fast.get("/openapi.json").json()
    body = document["paths"]["/predict"]["post"]["requestBody"]
    reference = body["content"]["application/json"]["schema"]["$ref"]

    assert body["required"] is True
    assert set(document["components"]["schemas"][reference.rsplit("/", 1)[1]]["properties"]) == set(EXAMPLE)
    assert "422" in document["paths"]["/predict"]["post"]["responses"]


def test_the_api_key_is_checked_before_the_body_is_read(
    tmp_path: Any, make_settings: Callable[..., Settings], models: Any
) -> None:
    settings = make_settings(tmp_path / "home", api_key=SecretStr(KEY))
    models.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as client:
        unauthorized = client.post("/predict", content="{not json", headers={"content-type": "application/json"})
        wrong = client.post("/predict", json=EXAMPLE, headers={"X-API-Key": "wrong"})
        right = client.post("/predict", json=EXAMPLE, headers={"X-API-Key": KEY})

    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"] == "APIKey"
    assert unauthorized.json()["code"] == "http_401"
    assert wrong.status_code == 401
    assert right.status_code == 200


def test_predict_is_one_route_of_the_app_and_its_openapi_entry_is_documented_once(
    clients: tuple[TestClient, TestClient],
) -> None:
    fast, _ = clients
    routes = [route for route in fast.app.routes if getattr(route, "path", None) == "/predict"]  # type: ignore[attr-defined]
    assert [type(route).__name__ for route in routes] == ["Route"]
    assert isinstance(routes[0].app, PredictEndpoint)  # type: ignore[attr-defined]
    assert list(fast.get("/openapi.json").json()["paths"]["/predict"]) == ["post"]
