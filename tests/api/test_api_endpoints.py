"""Every endpoint of the app, through ``TestClient`` with its lifespan, against a real local store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.core.components import build_model_store
from ccml.core.contracts import ModelStore
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.models.serving.records import records_from_frame
from ccml.models.training.synthetic import generate

LABELS = {"Completed", "Not Completed"}


@dataclass
class Served:
    client: TestClient
    version: str
    settings: Settings
    store: ModelStore
    schema: FeatureSchema


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[Served]:
    settings = make_settings(tmp_path_factory.mktemp("endpoints") / "home")
    store = build_model_store(settings)
    version = models.publish(store)
    with TestClient(create_app(settings)) as client:
        yield Served(client, version, settings, store, settings.feature_schema())


def students(schema: FeatureSchema, count: int, seed: int) -> list[dict[str, Any]]:
    """Complete synthetic records (rows with a missing value are dropped)."""
    records = records_from_frame(generate(schema, count * 2, seed), schema)
    complete = [record for record in records if None not in record.values()]
    return complete[:count]


def test_predict_returns_label_probability_and_the_champion_version(served: Served) -> None:
    response = served.client.post("/predict", json=served.schema.example_record())

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"prediction", "probability", "model_version"}
    assert body["prediction"] in LABELS
    assert 0.0 <= body["probability"] <= 1.0
    assert body["model_version"] == served.version


def test_predict_label_follows_the_probability_and_the_decision_threshold(served: Served) -> None:
    threshold = served.settings.decision_threshold
    for record in students(served.schema, 30, seed=11):
        body = served.client.post("/predict", json=record).json()
        assert body["prediction"] == ("Completed" if body["probability"] >= threshold else "Not Completed")


def test_predict_batch_answers_in_request_order(served: Served) -> None:
    instances = students(served.schema, 25, seed=12)

    response = served.client.post("/predict/batch", json={"instances": instances})

    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == served.version
    assert len(body["predictions"]) == len(instances)
    singles = [served.client.post("/predict", json=instance).json() for instance in instances]
    # The comparison only proves the order if the answers differ from one student to the next.
    assert len({single["probability"] for single in singles}) > 1
    for batched, single in zip(body["predictions"], singles, strict=True):
        assert batched["prediction"] == single["prediction"]
        assert batched["probability"] == pytest.approx(single["probability"], abs=1e-12)
        assert single["model_version"] == served.version


def test_predict_batch_of_the_maximum_size_is_accepted(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> None:
    settings = make_settings(tmp_path_factory.mktemp("max-batch") / "home", max_batch=5)
    models.publish(build_model_store(settings))
    instances = students(settings.feature_schema(), 5, seed=13)

    with TestClient(create_app(settings)) as client:
        response = client.post("/predict/batch", json={"instances": instances})

    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 5


def test_health_answers_ok(served: Served) -> None:
    response = served.client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_the_loaded_version(served: Served) -> None:
    response = served.client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "model_version": served.version}


def test_model_returns_the_champion_manifest(served: Served) -> None:
    response = served.client.get("/model")

    assert response.status_code == 200
    body = response.json()
    stored = served.store.manifest(served.version)
    assert body["version"] == served.version
    assert body["evaluation"]["holdout"]["roc_auc"] == pytest.approx(stored.evaluation.holdout.roc_auc)
    assert body["schema"]["name"] == served.schema.name
    assert [feature["name"] for feature in body["schema"]["features"]] == served.schema.feature_names
    assert datetime.fromisoformat(body["created_at"]) == stored.created_at


def test_model_lists_the_fairness_flags_of_the_stored_report(served: Served) -> None:
    body = served.client.get("/model").json()

    report = served.store.manifest(served.version).evaluation.fairness
    assert report is not None, "the built-in schema declares groups: every version has a fairness report"
    assert body["fairness_flags"] == report.flagged
    assert body["evaluation"]["fairness"]["flagged"] == report.flagged
    assert [c["name"] for c in body["evaluation"]["fairness"]["columns"]] == [g.name for g in served.schema.groups]


def test_metrics_are_prometheus_text_with_every_family(served: Served) -> None:
    served.client.post("/predict", json=served.schema.example_record())

    response = served.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for family in (
        "ccml_http_requests_total",
        "ccml_http_request_duration_seconds",
        "ccml_predictions_total",
        "ccml_model_info",
        "ccml_model_reloads_total",
    ):
        assert family in text
    assert f'ccml_model_info{{version="{served.version}"}} 1.0' in text


def test_metrics_count_requests_latency_predictions_and_the_initial_load(
    served: Served, read_metric: Callable[..., float]
) -> None:
    instances = students(served.schema, 4, seed=14)
    before = served.client.get("/metrics").text

    for instance in instances:
        assert served.client.post("/predict", json=instance).status_code == 200
    assert served.client.post("/predict/batch", json={"instances": instances}).status_code == 200
    after = served.client.get("/metrics").text

    def grew(name: str, **labels: str) -> float:
        return read_metric(after, name, **labels) - read_metric(before, name, **labels)

    single = {"method": "POST", "route": "/predict", "status": "200"}
    assert grew("ccml_http_requests_total", **single) == len(instances)
    assert grew("ccml_http_request_duration_seconds_count", **single) == len(instances)
    assert grew("ccml_http_requests_total", method="POST", route="/predict/batch", status="200") == 1
    assert grew("ccml_predictions_total") == 2 * len(instances)
    assert read_metric(after, "ccml_model_reloads_total", outcome="success") >= 1
    assert read_metric(after, "ccml_model_reloads_total", outcome="failure") == 0


def test_metrics_label_requests_by_route_template(served: Served, read_metric: Callable[..., float]) -> None:
    for path in ("/health", "/ready", "/model"):
        assert served.client.get(path).status_code == 200
    assert served.client.get("/no-such-route").status_code == 404

    text = served.client.get("/metrics").text

    for path in ("/health", "/ready", "/model"):
        assert read_metric(text, "ccml_http_requests_total", method="GET", route=path, status="200") >= 1
    assert read_metric(text, "ccml_http_requests_total", method="GET", status="404") >= 1


def test_docs_serve_swagger_ui_reading_the_openapi_document(served: Served) -> None:
    response = served.client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text
    assert "/openapi.json" in response.text


def test_openapi_document_carries_request_and_response_examples(served: Served) -> None:
    response = served.client.get("/openapi.json")

    assert response.status_code == 200
    schemas = response.json()["components"]["schemas"]
    assert schemas["StudentFeatures"]["examples"] == [served.schema.example_record()]
    assert schemas["BatchRequest"]["examples"][0]["instances"][0] == served.schema.example_record()
    assert schemas["PredictionResponse"]["examples"][0]["prediction"] in LABELS


def test_unknown_route_answers_404_as_json(served: Served) -> None:
    response = served.client.get("/no-such-route")

    assert response.status_code == 404
    assert response.json()["code"] == "http_404"


def test_wrong_method_answers_405(served: Served) -> None:
    response = served.client.get("/predict")

    assert response.status_code == 405
    assert response.json()["code"] == "http_405"
