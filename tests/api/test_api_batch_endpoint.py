"""``POST /predict/batch`` on the fast path: ``BatchEndpoint`` validates the raw body in one call,
predicts the whole batch in one model call (a large one in a worker thread), and answers what
``/predict`` answers for each instance."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.api.predict import THREAD_BODY_BYTES, BatchEndpoint
from ccml.core.components import build_model_store
from ccml.core.settings import Settings
from ccml.models.serving.records import records_from_frame
from ccml.models.training.synthetic import generate


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("batch") / "home")
    models.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _instances(count: int, seed: int) -> list[dict[str, Any]]:
    """Complete, varied synthetic records (the API takes no missing value)."""
    schema = Settings().feature_schema()
    records = records_from_frame(generate(schema, count * 2, seed), schema)
    return [record for record in records if None not in record.values()][:count]


def _predictions_total(client: TestClient) -> dict[str, float]:
    counts = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("ccml_predictions_total{"):
            label = line.split('label="', 1)[1].split('"', 1)[0]
            counts[label] = float(line.rsplit(" ", 1)[1])
    return counts


@pytest.mark.parametrize("count", [3, 400], ids=["on the event loop", "in a worker thread"])
def test_batch_answers_what_predict_answers_and_counts_each_label(client: TestClient, count: int) -> None:
    instances = _instances(count, seed=count)
    body = json.dumps({"instances": instances}).encode()
    assert (len(body) >= THREAD_BODY_BYTES) == (count == 400)
    before = _predictions_total(client)

    batch = client.post("/predict/batch", content=body, headers={"content-type": "application/json"})
    counted = _predictions_total(client)
    singles = [client.post("/predict", json=instance).json() for instance in instances]

    assert batch.status_code == 200, batch.text
    answers = batch.json()
    assert answers["model_version"] == singles[0]["model_version"]
    assert [a["prediction"] for a in answers["predictions"]] == [s["prediction"] for s in singles]
    assert [a["probability"] for a in answers["predictions"]] == pytest.approx([s["probability"] for s in singles])
    labels = [a["prediction"] for a in answers["predictions"]]
    assert {label: counted.get(label, 0) - before.get(label, 0) for label in set(labels)} == {
        label: labels.count(label) for label in set(labels)
    }


def test_a_bad_instance_deep_in_a_batch_is_named_and_nothing_is_predicted(client: TestClient) -> None:
    instances = _instances(50, seed=3)
    instances[37] = {**instances[37], "quiz_scores": "high"}
    before = _predictions_total(client)

    answer = client.post("/predict/batch", json={"instances": instances})

    assert answer.status_code == 422
    assert [error["field"] for error in answer.json()["errors"]] == ["instances.37.quiz_scores"]
    assert _predictions_total(client) == before


def test_batch_is_one_route_documented_once_with_its_request_body(client: TestClient) -> None:
    routes = [route for route in client.app.routes if getattr(route, "path", None) == "/predict/batch"]  # type: ignore[attr-defined]
    assert [type(route).__name__ for route in routes] == ["Route"]
    assert isinstance(routes[0].app, BatchEndpoint)  # type: ignore[attr-defined]
    entry = client.get("/openapi.json").json()["paths"]["/predict/batch"]
    assert list(entry) == ["post"]
    schema = entry["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/BatchRequest")
