"""``POST /predict`` is answered by ``PredictEndpoint`` ahead of FastAPI's routing; the FastAPI
route of the same path documents it and answers identically when reached through FastAPI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ccml.api import create_app
from ccml.api.bodies import BodyModels
from ccml.api.errors import register_error_handlers
from ccml.api.metrics import ApiMetrics
from ccml.api.predict import PredictDispatch, PredictEndpoint
from ccml.api.routes import build_router
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


def _app(settings: Settings, *, dispatch: bool) -> FastAPI:
    """The production app (dispatch) or the bare FastAPI route with the same endpoint (no dispatch)."""
    if dispatch:
        return create_app(settings)
    schema = settings.feature_schema()
    watcher = ChampionWatcher(build_model_store(settings), lambda a: build_predictor(settings, a), schema)
    watcher.check()
    bodies = BodyModels(schema, settings.max_batch)
    endpoint = PredictEndpoint(watcher, ApiMetrics(), bodies.record, settings.api_key)
    app = FastAPI()
    register_error_handlers(app)
    app.include_router(build_router(bodies, [], endpoint))
    return app


@pytest.fixture(scope="module")
def clients(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[tuple[TestClient, TestClient]]:
    settings = make_settings(tmp_path_factory.mktemp("predict-endpoint") / "home")
    models.publish(build_model_store(settings))
    with TestClient(_app(settings, dispatch=True)) as fast, TestClient(_app(settings, dispatch=False)) as routed:
        yield fast, routed


@pytest.mark.parametrize(("body", "headers"), CASES)
def test_the_fast_path_answers_as_the_fastapi_route_does(
    clients: tuple[TestClient, TestClient], body: str, headers: dict[str, str]
) -> None:
    fast, routed = clients
    headers = {"content-type": "application/json", **headers}

    answers = [client.post("/predict", content=body, headers=headers) for client in (fast, routed)]

    assert answers[0].status_code == answers[1].status_code
    assert answers[0].json() == answers[1].json()
    assert answers[0].headers["content-type"] == "application/json"


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


def test_dispatch_takes_only_post_predict_under_the_root_path() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append("app")

    class Endpoint:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen.append("endpoint")

    dispatch = PredictDispatch(app, Endpoint())  # type: ignore[arg-type]
    for path, root in [("/api/predict", "/api"), ("/predict", ""), ("/api/predict", ""), ("/predictx", "")]:
        scope = {"type": "http", "method": "POST", "path": path, "root_path": root}
        asyncio.run(dispatch(scope, None, None))  # type: ignore[arg-type]
    asyncio.run(dispatch({"type": "http", "method": "GET", "path": "/predict"}, None, None))  # type: ignore[arg-type]

    assert seen == ["endpoint", "endpoint", "app", "app", "app"]
