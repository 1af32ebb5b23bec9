"""Bad input never gets a 500: every class of client mistake has its exact status and a JSON
body whose ``code`` is stable and whose ``message`` names the field."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccml.api import create_app
from ccml.core.components import build_model_store
from ccml.core.schema import load_schema
from ccml.core.settings import Settings

SCHEMA = load_schema()
EXAMPLE: dict[str, Any] = dict(SCHEMA.example_record())
JSON = {"content-type": "application/json"}
MAX_BATCH = 5
MAX_BODY = 2048


def changed(**fields: Any) -> dict[str, Any]:
    return {**EXAMPLE, **fields}


def without(name: str) -> dict[str, Any]:
    return {key: value for key, value in EXAMPLE.items() if key != name}


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("bad-input") / "home", max_batch=MAX_BATCH, max_body_bytes=MAX_BODY
    )
    models.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def empty_store_client(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings]
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("no-model") / "home")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def post_raw(client: TestClient, path: str, document: Any) -> Any:
    """POST ``document`` serialised by ``json.dumps``, which writes NaN and Infinity as bare literals."""
    return client.post(path, content=json.dumps(document), headers=JSON)


def assert_names_field(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_input"
    assert field in body["message"]
    assert field in {error["field"] for error in body["errors"]}


BAD_RECORDS = [
    pytest.param(without("quiz_scores"), "quiz_scores", id="missing-field"),
    pytest.param(changed(favourite_colour="blue"), "favourite_colour", id="extra-field"),
    pytest.param(changed(quiz_scores=None), "quiz_scores", id="null-number"),
    pytest.param(changed(quiz_scores="50.37"), "quiz_scores", id="string-for-number"),
    pytest.param(changed(number_of_videos_watched="17"), "number_of_videos_watched", id="string-for-integer"),
    pytest.param(changed(number_of_videos_watched=True), "number_of_videos_watched", id="boolean-for-integer"),
    pytest.param(changed(quiz_scores=False), "quiz_scores", id="boolean-for-number"),
    pytest.param(changed(number_of_quizzes_taken=3.5), "number_of_quizzes_taken", id="float-for-integer"),
    pytest.param(changed(device_type=True), "device_type", id="boolean-for-integer-category"),
    pytest.param(changed(device_type="1"), "device_type", id="string-for-integer-category"),
    pytest.param(changed(course_category=1), "course_category", id="number-for-string-category"),
    pytest.param(changed(quiz_scores=[50.0]), "quiz_scores", id="list-for-number"),
    pytest.param(changed(quiz_scores=float("nan")), "quiz_scores", id="nan"),
    pytest.param(changed(time_spent_on_course=float("inf")), "time_spent_on_course", id="infinity"),
    pytest.param(changed(completion_rate=float("-inf")), "completion_rate", id="minus-infinity"),
    pytest.param(changed(number_of_videos_watched=float("inf")), "number_of_videos_watched", id="infinity-for-integer"),
    pytest.param(changed(quiz_scores=100.5), "quiz_scores", id="above-maximum"),
    pytest.param(changed(time_spent_on_course=-0.01), "time_spent_on_course", id="below-minimum"),
    pytest.param(changed(number_of_videos_watched=-1), "number_of_videos_watched", id="integer-below-minimum"),
    pytest.param(changed(number_of_quizzes_taken=11), "number_of_quizzes_taken", id="integer-above-maximum"),
    pytest.param(changed(quiz_scores=10**400), "quiz_scores", id="huge-integer-for-number"),
    pytest.param(changed(course_category="Astrology"), "course_category", id="unknown-category"),
    pytest.param(changed(course_category="programming"), "course_category", id="category-in-wrong-case"),
    pytest.param(changed(device_type=2), "device_type", id="unknown-integer-category"),
]


@pytest.mark.parametrize(("record", "field"), BAD_RECORDS)
def test_predict_rejects_bad_record_with_422_naming_the_field(client: TestClient, record: Any, field: str) -> None:
    assert_names_field(post_raw(client, "/predict", record), field)


@pytest.mark.parametrize(("record", "field"), BAD_RECORDS)
def test_predict_batch_rejects_bad_instance_with_422_naming_its_position_and_field(
    client: TestClient, record: Any, field: str
) -> None:
    response = post_raw(client, "/predict/batch", {"instances": [EXAMPLE, record]})

    assert_names_field(response, f"instances.1.{field}")


def test_predict_reports_every_bad_field_of_one_record(client: TestClient) -> None:
    response = post_raw(client, "/predict", changed(quiz_scores=float("nan"), device_type=True, extra=1))

    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"quiz_scores", "device_type", "extra"}


def test_predict_accepts_an_integer_where_the_schema_says_number(client: TestClient) -> None:
    assert client.post("/predict", json=changed(quiz_scores=50)).status_code == 200


@pytest.mark.parametrize(
    "document",
    [pytest.param([EXAMPLE], id="list"), pytest.param("student", id="string"), pytest.param(None, id="null")],
)
def test_predict_rejects_a_body_that_is_not_an_object_with_422(client: TestClient, document: Any) -> None:
    response = post_raw(client, "/predict", document)

    assert_names_field(response, "body")


def test_predict_rejects_an_empty_body_with_422(client: TestClient) -> None:
    assert_names_field(client.post("/predict", content=b"", headers=JSON), "body")


def test_predict_rejects_json_sent_as_text_plain_with_422(client: TestClient) -> None:
    response = client.post("/predict", content=json.dumps(EXAMPLE), headers={"content-type": "text/plain"})

    assert_names_field(response, "body")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"quiz_scores": 50,', id="truncated"),
        pytest.param(b"{'quiz_scores': 50}", id="single-quotes"),
        pytest.param(b'{"quiz_scores": 50}}', id="trailing-brace"),
        pytest.param(b"not json at all", id="prose"),
        pytest.param(b'{"course_category": "\xff"}', id="invalid-utf8"),
        pytest.param(b"[" * 1500, id="nested-too-deep"),
    ],
)
@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_malformed_json_answers_400(client: TestClient, path: str, body: bytes) -> None:
    response = client.post(path, content=body, headers=JSON)

    assert response.status_code == 400
    document = response.json()
    assert document["code"] in {"invalid_json", "http_400"}
    assert document["message"]


def test_malformed_json_message_says_the_body_is_not_json(client: TestClient) -> None:
    response = client.post("/predict", content=b'{"quiz_scores": 50,', headers=JSON)

    assert response.json()["code"] == "invalid_json"
    assert "not valid JSON" in response.json()["message"]


def test_empty_batch_answers_422_naming_instances(client: TestClient) -> None:
    assert_names_field(client.post("/predict/batch", json={"instances": []}), "instances")


def test_batch_over_max_batch_answers_422_naming_instances(client: TestClient) -> None:
    response = client.post("/predict/batch", json={"instances": [EXAMPLE] * (MAX_BATCH + 1)})

    assert_names_field(response, "instances")
    assert str(MAX_BATCH) in response.json()["message"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        pytest.param({}, "instances", id="missing-instances"),
        pytest.param({"instances": EXAMPLE}, "instances", id="instances-not-a-list"),
        pytest.param({"instances": [EXAMPLE], "extra": 1}, "extra", id="extra-top-level-field"),
        pytest.param([EXAMPLE], "body", id="bare-list"),
    ],
)
def test_batch_with_bad_envelope_answers_422(client: TestClient, document: Any, field: str) -> None:
    assert_names_field(post_raw(client, "/predict/batch", document), field)


def padded_body(size: int) -> bytes:
    """A valid record, padded with JSON whitespace to exactly ``size`` bytes."""
    body = json.dumps(EXAMPLE).encode()
    return body + b" " * (size - len(body))


def chunks(body: bytes, size: int = 512) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def assert_body_too_large(response: Any) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["code"] == "body_too_large"
    assert str(MAX_BODY) in document["message"]
    assert response.headers["x-request-id"]


def test_body_over_the_limit_with_content_length_answers_413(client: TestClient) -> None:
    response = client.post("/predict", content=padded_body(MAX_BODY + 1), headers=JSON)

    assert response.request.headers["content-length"] == str(MAX_BODY + 1)
    assert_body_too_large(response)


def test_chunked_body_over_the_limit_answers_413(client: TestClient) -> None:
    response = client.post("/predict", content=chunks(padded_body(MAX_BODY + 1)), headers=JSON)

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_body_too_large(response)


def test_body_of_exactly_the_limit_is_accepted_with_or_without_content_length(client: TestClient) -> None:
    assert client.post("/predict", content=padded_body(MAX_BODY), headers=JSON).status_code == 200
    assert client.post("/predict", content=chunks(padded_body(MAX_BODY)), headers=JSON).status_code == 200


def test_batch_body_over_the_limit_answers_413(client: TestClient) -> None:
    body = json.dumps({"instances": [EXAMPLE] * MAX_BATCH}).encode()
    body += b" " * (MAX_BODY + 1 - len(body))

    assert_body_too_large(client.post("/predict/batch", content=body, headers=JSON))
    assert_body_too_large(client.post("/predict/batch", content=chunks(body), headers=JSON))


def test_oversize_body_is_counted_in_metrics_as_413(client: TestClient, read_metric: Callable[..., float]) -> None:
    before = read_metric(client.get("/metrics").text, "ccml_http_requests_total", status="413")

    client.post("/predict", content=padded_body(MAX_BODY + 1), headers=JSON)

    assert read_metric(client.get("/metrics").text, "ccml_http_requests_total", status="413") == before + 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/predict", EXAMPLE, id="predict"),
        pytest.param("POST", "/predict/batch", {"instances": [EXAMPLE]}, id="batch"),
        pytest.param("GET", "/ready", None, id="ready"),
        pytest.param("GET", "/model", None, id="model"),
    ],
)
def test_without_a_model_answers_503_with_a_clear_message(
    empty_store_client: TestClient, method: str, path: str, body: Any
) -> None:
    response = empty_store_client.request(method, path, json=body)

    assert response.status_code == 503
    document = response.json()
    assert document["code"] == "model_not_loaded"
    assert "no model is loaded" in document["message"]
    assert "Traceback" not in response.text


def test_without_a_model_the_process_is_still_healthy(empty_store_client: TestClient) -> None:
    assert empty_store_client.get("/health").status_code == 200
    assert empty_store_client.get("/metrics").status_code == 200


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    )


# The function-scoped fixtures are the environment isolation: safe to share between examples.
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    replaced=st.dictionaries(st.sampled_from([*SCHEMA.feature_names, "unknown"]), json_values(), max_size=4),
    dropped=st.sets(st.sampled_from(SCHEMA.feature_names), max_size=2),
)
def test_arbitrary_field_values_get_200_or_422_never_a_500(
    client: TestClient, replaced: dict[str, Any], dropped: set[str]
) -> None:
    record = {key: value for key, value in {**EXAMPLE, **replaced}.items() if key not in dropped}

    response = post_raw(client, "/predict", record)

    # Nested values can outgrow the test's small body limit: 413 then, and only then.
    too_large = len(json.dumps(record).encode()) > MAX_BODY
    assert response.status_code in ({413} if too_large else {200, 422}), response.text
    if response.status_code == 422:
        fields = {error["field"].split(".")[0] for error in response.json()["errors"]}
        assert fields <= set(SCHEMA.feature_names) | set(replaced)
