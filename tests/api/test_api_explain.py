"""``?explain=true`` on ``/predict`` and ``/predict/batch``: each answer carries its explanation
(bias + contributions is the probability, top factors by size), bad query values are a 422 naming
the parameter, a version without an explainer is a 409, and the OpenAPI document shows it all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.core.artifact import ModelArtifact
from ccml.core.components import build_model_store
from ccml.core.contracts import ModelStore
from ccml.core.model_files import EXPLAINER_FILE
from ccml.core.schema import load_schema
from ccml.core.settings import Settings
from ccml.models.serving.records import records_from_frame
from ccml.models.training.synthetic import generate
from ccml.storage.local import LocalModelStore

SCHEMA = load_schema()
EXAMPLE = dict(SCHEMA.example_record())


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[tuple[TestClient, ModelStore]]:
    settings = make_settings(tmp_path_factory.mktemp("explain") / "home", explain_top=4)
    store = build_model_store(settings)
    models.publish(store)
    with TestClient(create_app(settings)) as client:
        yield client, store


def _instances(count: int) -> list[dict[str, Any]]:
    """Complete, varied synthetic records (the API takes no missing value)."""
    records = records_from_frame(generate(SCHEMA, count * 2, 5), SCHEMA)
    return [record for record in records if None not in record.values()][:count]


def _check(answer: dict[str, Any], record: dict[str, Any], top: int) -> None:
    explained = answer["explanation"]
    assert (explained["method"], explained["scale"], explained["link"]) == ("tree_path", "probability", "identity")
    # A forest's score is its probability (ONNX's float32 trees differ by about 1e-7).
    assert explained["score"] == pytest.approx(answer["probability"], abs=1e-6)
    factors = explained["factors"]
    assert 0 < len(factors) <= top
    assert {f["feature"] for f in factors} <= set(SCHEMA.feature_names)
    assert [abs(f["contribution"]) for f in factors] == sorted((abs(f["contribution"]) for f in factors), reverse=True)
    for factor in factors:
        assert factor["value"] == record[factor["feature"]]
        assert factor["direction"] == ("raises" if factor["contribution"] > 0 else "lowers")


def test_predict_explains_with_the_configured_number_of_factors(served: tuple[TestClient, ModelStore]) -> None:
    client, _ = served

    plain = client.post("/predict", json=EXAMPLE).json()
    explained = client.post("/predict?explain=true", json=EXAMPLE).json()
    fewer = client.post("/predict", params={"explain": "1", "top": "2"}, json=EXAMPLE).json()

    assert "explanation" not in plain
    assert {k: v for k, v in explained.items() if k != "explanation"} == plain
    _check(explained, EXAMPLE, top=4)  # CCML_EXPLAIN_TOP
    assert len(explained["explanation"]["factors"]) == 4
    assert fewer["explanation"]["factors"] == explained["explanation"]["factors"][:2]
    assert "explanation" not in client.post("/predict?explain=false&top=3", json=EXAMPLE).json()


def test_batch_explains_each_instance_as_predict_does(served: tuple[TestClient, ModelStore]) -> None:
    client, _ = served
    instances = _instances(12)  # more than the one-record path's few rows: the NumPy path

    batch = client.post("/predict/batch?explain=true&top=3", json={"instances": instances})

    assert batch.status_code == 200, batch.text
    predictions = batch.json()["predictions"]
    assert len(predictions) == len(instances)
    for instance, answer in zip(instances, predictions, strict=True):
        _check(answer, instance, top=3)
        one = client.post("/predict?explain=true&top=3", json=instance).json()
        assert answer["probability"] == one["probability"]
        assert [f["feature"] for f in answer["explanation"]["factors"]] == [
            f["feature"] for f in one["explanation"]["factors"]
        ]
        for ours, single in zip(answer["explanation"]["factors"], one["explanation"]["factors"], strict=True):
            assert ours["contribution"] == pytest.approx(single["contribution"], abs=1e-12)
    assert (
        "explanation" not in client.post("/predict/batch", json={"instances": instances[:2]}).json()["predictions"][0]
    )


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("explain=maybe", "query.explain"),
        ("explain=", "query.explain"),
        ("explain=true&top=0", "query.top"),
        ("explain=true&top=101", "query.top"),
        ("explain=true&top=two", "query.top"),
        ("explain=true&top=" + "9" * 5000, "query.top"),  # past int()'s 4,300-digit limit
        ("top=-1", "query.top"),
    ],
)
def test_a_bad_query_value_is_a_422_naming_the_parameter(
    served: tuple[TestClient, ModelStore], path: str, query: str, field: str
) -> None:
    client, _ = served
    body = EXAMPLE if path == "/predict" else {"instances": [EXAMPLE]}

    response = client.post(f"{path}?{query}", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_input"
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_a_version_without_an_explainer_answers_409_and_still_predicts(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> None:
    settings = make_settings(tmp_path_factory.mktemp("unexplained") / "home")
    store = LocalModelStore(settings.home / "models")
    artifact = models.artifacts[0]
    files = {name: data for name, data in artifact.files.items() if name != EXPLAINER_FILE}
    entries = {name: entry for name, entry in artifact.manifest.files.items() if name != EXPLAINER_FILE}
    notes = {**artifact.manifest.notes, "explainer": "none: a plugin's model"}
    manifest = artifact.manifest.model_copy(update={"files": entries, "notes": notes, "version": None})
    version = store.save(ModelArtifact(manifest, files)).id
    store.promote(version, reason="test")

    with TestClient(create_app(settings)) as client:
        one = client.post("/predict?explain=true", json=EXAMPLE)
        batch = client.post("/predict/batch?explain=true", json={"instances": [EXAMPLE]})
        plain = client.post("/predict", json=EXAMPLE)

    for response in (one, batch):
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "explanation_unavailable"
        assert f"model {version} has no explanations (none: a plugin's model)" in response.json()["message"]
    assert plain.status_code == 200


def test_openapi_documents_the_query_parameters_and_the_explanation(served: tuple[TestClient, ModelStore]) -> None:
    client, _ = served

    document = client.get("/openapi.json").json()

    for path in ("/predict", "/predict/batch"):
        operation = document["paths"][path]["post"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert set(parameters) == {"explain", "top"}
        assert parameters["explain"]["in"] == "query"
        assert {k: parameters["top"]["schema"][k] for k in ("type", "minimum", "maximum")} == {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
        }
        assert operation["responses"]["409"]["content"]["application/json"]["example"]["code"] == (
            "explanation_unavailable"
        )
    schemas = document["components"]["schemas"]
    assert set(schemas["Explanation"]["properties"]) == {"method", "scale", "link", "bias", "score", "factors"}
    assert set(schemas["ExplanationFactor"]["properties"]) == {"feature", "value", "direction", "contribution"}
    assert "explanation" in schemas["PredictionResponse"]["properties"]
    assert "explanation" in schemas["BatchPrediction"]["properties"]
