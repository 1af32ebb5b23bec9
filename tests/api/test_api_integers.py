"""An integer field takes what JSON Schema calls an integer: 18 and 18.0 alike (the document
says ``type: integer``, and clients or fuzzers that write numbers as floats send 18.0), while
18.5, "18" and true are refused with a 422 naming the field, on /predict and /predict/batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.core.components import build_model_store
from ccml.core.schema import load_schema
from ccml.core.settings import Settings

SCHEMA = load_schema()
EXAMPLE = dict(SCHEMA.example_record())
# Integer features, and categorical ones whose categories are integers.
WHOLE = [
    feature.name
    for feature in SCHEMA.features
    if feature.type == "integer" or (feature.type == "categorical" and isinstance(feature.category_list[0], int))
]


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("integers") / "home")
    models.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def predict(client: TestClient, path: str, record: dict[str, Any]) -> Any:
    if path == "/predict":
        return client.post(path, json=record)
    return client.post(path, json={"instances": [record]})


def test_the_schema_has_integer_fields_to_test() -> None:
    assert {"number_of_videos_watched", "number_of_quizzes_taken", "device_type"} <= set(WHOLE)


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
@pytest.mark.parametrize("name", WHOLE)
def test_an_integral_float_is_the_same_integer(client: TestClient, path: str, name: str) -> None:
    as_int = predict(client, path, EXAMPLE)
    as_float = predict(client, path, {**EXAMPLE, name: float(EXAMPLE[name])})

    assert as_float.status_code == 200, as_float.text
    assert as_float.json() == as_int.json()


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
@pytest.mark.parametrize("name", WHOLE)
@pytest.mark.parametrize("offset", [0.5, 1e-9], ids=["half", "tiny"])
def test_a_fractional_float_is_refused_naming_the_field(
    client: TestClient, path: str, name: str, offset: float
) -> None:
    response = predict(client, path, {**EXAMPLE, name: int(EXAMPLE[name]) + offset})

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"].rsplit(".", 1)[-1] == name
    assert name in response.json()["message"]


@pytest.mark.parametrize("name", WHOLE)
@pytest.mark.parametrize("value", ["18", True, "18.0"], ids=["string", "boolean", "float-string"])
def test_strings_and_booleans_are_still_refused(client: TestClient, name: str, value: Any) -> None:
    response = predict(client, "/predict", {**EXAMPLE, name: value})

    assert response.status_code == 422, response.text
    assert name in response.json()["message"]


def test_an_integral_float_out_of_range_is_refused_as_out_of_range(client: TestClient) -> None:
    feature = next(feature for feature in SCHEMA.features if feature.type == "integer")

    response = predict(client, "/predict", {**EXAMPLE, feature.name: float(feature.bounds[1] + 1)})

    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "less_than_equal"
