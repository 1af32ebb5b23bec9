"""The body limits. In process: the default size limit fits the documented largest batch
(``maxItems`` instances of the schema's longest records), and a body over it still gets a JSON
413. Against a real ``ccml serve`` over raw sockets: a stalled body gets 408 after
CCML_BODY_TIMEOUT_S and its connection is closed, however many there are; a client that leaves
halfway through its body is counted as 499 (client closed request), not a 500."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.api.body import body_limit, largest_record_bytes
from ccml.core.components import build_model_store
from ccml.core.schema import Feature, FeatureSchema, load_schema
from ccml.core.settings import Settings

pytestmark = pytest.mark.integration

BODY_TIMEOUT_S = 1.0
STALLED = 60
BODY = json.dumps(load_schema().example_record()).encode()
ROUTES = ["/predict", "/predict/batch"]


def longest_value(feature: Feature) -> Any:
    """The valid value of ``feature`` that json.dumps writes longest."""
    if feature.type == "categorical":
        return max(feature.category_list, key=lambda category: len(json.dumps(category)))
    if feature.type == "boolean":
        return False
    low, high = feature.bounds
    if feature.type == "integer":
        return max((float(low), float(high)), key=lambda bound: len(json.dumps(bound)))
    tiny = 1.2345678901234567e-100  # 17 significant digits and a three-digit exponent
    return next(value for value in (-tiny, tiny, -(10**-10), high) if low <= value <= high)


def longest_record(schema: FeatureSchema) -> dict[str, Any]:
    return {feature.name: longest_value(feature) for feature in schema.features}


def test_the_largest_record_size_is_that_of_a_real_longest_record(second_schema_file: Any) -> None:
    for schema in (load_schema(), load_schema(second_schema_file)):
        assert largest_record_bytes(schema) == len(json.dumps(longest_record(schema))), schema.name


@pytest.fixture(scope="module")
def default_client(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[TestClient]:
    """An app with the default CCML_MAX_BATCH and body limit."""
    settings = make_settings(tmp_path_factory.mktemp("default-limits") / "home")
    assert settings.max_body_bytes is None
    models.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("indent", [None, 4], ids=["compact", "pretty-printed"])
def test_a_max_batch_of_the_longest_records_fits_the_default_limit(
    default_client: TestClient, indent: int | None
) -> None:
    """schemathesis sent a batch of exactly maxItems instances and got 413: the limit was 1 MiB."""
    max_items = Settings().max_batch
    body = json.dumps({"instances": [longest_record(load_schema())] * max_items}, indent=indent).encode()

    response = default_client.post("/predict/batch", content=body, headers={"content-type": "application/json"})

    assert len(body) > 2 * 1024**2  # larger than the old default of 1 MiB, by far
    assert response.status_code == 200, response.text[:500]
    assert len(response.json()["predictions"]) == max_items


def test_a_body_over_the_default_limit_gets_a_json_413(default_client: TestClient) -> None:
    limit = body_limit(load_schema(), Settings().max_batch, None)

    response = default_client.post(
        "/predict/batch", content=b" " * (limit + 1), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert str(limit) in response.json()["message"]


def test_max_body_bytes_when_set_is_the_limit() -> None:
    assert body_limit(load_schema(), 10_000, 2048) == 2048
    assert body_limit(load_schema(), 1, None) == 1024**2  # never below the old default


@dataclass
class Server:
    process: Any
    host: str
    port: int

    def metrics(self) -> str:
        return httpx.get(f"{self.process.url}/metrics", timeout=10).text


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    make_settings: Callable[..., Settings],
    models: Any,
    ccml_serve: Callable[..., Any],
) -> Iterator[Server]:
    settings = make_settings(tmp_path_factory.mktemp("body-limits") / "home")
    models.publish(build_model_store(settings))
    process = ccml_serve(settings.home, env={"CCML_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)})
    host, port = process.url.removeprefix("http://").split(":")
    try:
        yield Server(process, host, int(port))
    finally:
        process.stop()


def partial_request(server: Server, path: str, sent: bytes, declared: int) -> socket.socket:
    """A connection that sent the headers of a ``declared``-byte body, then only ``sent``."""
    connection = socket.create_connection((server.host, server.port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    connection.sendall(head.encode() + sent)
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds each read)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def status_count(metrics: str, route: str, status: int, read_metric: Callable[..., float]) -> float:
    return read_metric(metrics, "ccml_http_requests_total", route=route, status=str(status))


@pytest.mark.parametrize("path", ROUTES)
def test_a_stalled_body_gets_408_and_its_connection_is_closed(
    server: Server, path: str, read_metric: Callable[..., float]
) -> None:
    before = status_count(server.metrics(), path, 408, read_metric)
    connection = partial_request(server, path, BODY[:10], len(BODY))
    started = time.monotonic()
    with connection:
        answer = read_until_closed(connection)
    waited = time.monotonic() - started

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {
        "code": "body_timeout",
        "message": f"request body did not arrive within {BODY_TIMEOUT_S:g} s",
        "errors": [],
    }
    assert BODY_TIMEOUT_S * 0.9 <= waited < BODY_TIMEOUT_S + 5
    assert status_count(server.metrics(), path, 408, read_metric) == before + 1


def test_a_body_sent_a_byte_at_a_time_gets_408_at_the_deadline(server: Server) -> None:
    """The deadline is for the whole body, not for the gap between two reads: a slow drip is cut off too."""
    connection = partial_request(server, "/predict", BODY[:1], len(BODY))
    started = time.monotonic()
    with connection:
        connection.settimeout(0.2)
        answer = b""
        for byte in BODY[1:]:
            try:
                answer = connection.recv(65536)
            except TimeoutError:
                connection.sendall(bytes([byte]))  # never silent for long
                continue
            break
        waited = time.monotonic() - started

    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert waited < BODY_TIMEOUT_S + 2


def test_many_stalled_bodies_are_all_timed_out_together(server: Server, read_metric: Callable[..., float]) -> None:
    """The issue's pile-up: stalled connections stayed open for minutes. Now each gets its 408 and is closed."""
    before = status_count(server.metrics(), "/predict", 408, read_metric)
    started = time.monotonic()
    connections = [partial_request(server, "/predict", BODY[:5], len(BODY)) for _ in range(STALLED)]
    answers = []
    for connection in connections:
        with connection:
            answers.append(read_until_closed(connection))
    waited = time.monotonic() - started

    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)
    assert waited < BODY_TIMEOUT_S + 10
    assert status_count(server.metrics(), "/predict", 408, read_metric) == before + STALLED
    with httpx.Client(base_url=server.process.url, timeout=10) as client:  # and the server still serves
        assert client.post("/predict", content=BODY, headers={"content-type": "application/json"}).status_code == 200


@pytest.mark.parametrize("path", ROUTES)
def test_a_client_that_leaves_mid_body_is_counted_as_499_not_500(
    server: Server, path: str, read_metric: Callable[..., float]
) -> None:
    before = server.metrics()
    partial_request(server, path, BODY[:10], len(BODY)).close()

    deadline = time.monotonic() + 10
    while status_count(server.metrics(), path, 499, read_metric) == status_count(before, path, 499, read_metric):
        assert time.monotonic() < deadline, f"no 499 counted for {path}:\n{server.process.logs()[-3000:]}"
        time.sleep(0.05)
    after = server.metrics()

    assert status_count(after, path, 500, read_metric) == status_count(before, path, 500, read_metric)
    log = server.process.logs()
    assert "request_crashed" not in log
    assert "Exception in ASGI application" not in log
