"""Request ids and the one structured log event per request."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.core.components import build_model_store
from ccml.core.schema import load_schema
from ccml.core.settings import Settings

EXAMPLE = load_schema().example_record()
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[tuple[TestClient, str]]:
    settings = make_settings(tmp_path_factory.mktemp("request-context") / "home")
    version = models.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as client:
        yield client, version


@pytest.mark.parametrize("request_id", ["abc-123", "7f1c.trace:span_2", "x" * 128])
def test_client_request_id_is_echoed(served: tuple[TestClient, str], request_id: str) -> None:
    client, _ = served

    response = client.post("/predict", json=EXAMPLE, headers={"X-Request-ID": request_id})

    assert response.headers["x-request-id"] == request_id


def test_request_id_is_generated_when_absent_and_differs_per_request(served: tuple[TestClient, str]) -> None:
    client, _ = served

    first = client.get("/health").headers["x-request-id"]
    second = client.get("/health").headers["x-request-id"]

    assert GENERATED_ID.match(first)
    assert GENERATED_ID.match(second)
    assert first != second


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param("has spaces", id="spaces"),
        pytest.param("line\nbreak", id="newline"),
        pytest.param("evil\r\nSet-Cookie: session=1", id="header-injection"),
        pytest.param("a" * 500, id="500-chars"),
        pytest.param("<script>", id="markup"),
        pytest.param("", id="empty"),
    ],
)
def test_hostile_request_id_is_replaced_by_a_generated_one(served: tuple[TestClient, str], hostile: str) -> None:
    client, _ = served

    response = client.get("/health", headers={"X-Request-ID": hostile})

    assert GENERATED_ID.match(response.headers["x-request-id"])
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("POST", "/predict", {"unknown": 1}, 422, id="invalid-input"),
        pytest.param("GET", "/no-such-route", None, 404, id="not-found"),
    ],
)
def test_error_answers_carry_the_request_id(
    served: tuple[TestClient, str], method: str, path: str, body: Any, status: int
) -> None:
    client, _ = served

    response = client.request(method, path, json=body, headers={"X-Request-ID": "err-1"})

    assert response.status_code == status
    assert response.headers["x-request-id"] == "err-1"


def finished_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in logs if event["event"] == "request_finished"]


def test_one_request_finished_event_per_request_with_its_details(served: tuple[TestClient, str]) -> None:
    client, version = served

    with structlog.testing.capture_logs() as logs:
        response = client.post("/predict", json=EXAMPLE)

    assert response.status_code == 200
    [event] = finished_events(logs)
    assert event["method"] == "POST"
    assert event["route"] == "/predict"
    assert event["status"] == 200
    assert isinstance(event["latency_ms"], float)
    assert event["latency_ms"] >= 0
    assert event["model_version"] == version


def test_request_finished_event_logs_the_error_status_and_route_template(served: tuple[TestClient, str]) -> None:
    client, _ = served

    with structlog.testing.capture_logs() as logs:
        client.post("/predict/batch", json={"instances": []})

    [event] = finished_events(logs)
    assert (event["method"], event["route"], event["status"]) == ("POST", "/predict/batch", 422)


def test_request_finished_event_has_no_model_version_where_no_model_was_used(served: tuple[TestClient, str]) -> None:
    client, _ = served

    with structlog.testing.capture_logs() as logs:
        client.get("/health")

    [event] = finished_events(logs)
    assert (event["route"], event["status"], event["model_version"]) == ("/health", 200, None)


def test_request_id_is_bound_to_every_log_event_of_the_request(served: tuple[TestClient, str]) -> None:
    client, _ = served

    # capture_logs keeps the processor list instance, as bound loggers (the middleware's) expect.
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as seen:
        client.get("/health", headers={"X-Request-ID": "bound-7"})

    [event] = finished_events(seen)
    assert event["request_id"] == "bound-7"
