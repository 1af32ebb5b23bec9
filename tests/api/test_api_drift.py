"""GET /drift and the drift gauges: live inputs against the serving version's training reference."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.core.artifact import ModelArtifact
from ccml.core.components import build_model_store
from ccml.core.contracts import ModelStore
from ccml.core.schema import load_schema
from ccml.models.serving.records import records_from_frame
from ccml.models.training.synthetic import generate
from tests.helpers import shifted_sample

SCHEMA = load_schema()
EXAMPLE = SCHEMA.example_record()
NO_POLLING_S = 3600.0
MIN_ROWS = 200
KEY = "drift-key-123"


def _instances(shift: bool, rows: int = 1000, seed: int = 31) -> list[dict[str, Any]]:
    """Complete records (the API takes no missing field) of a fresh synthetic sample, shifted or not."""
    frame = generate(SCHEMA, rows, seed=seed)
    if shift:
        frame = shifted_sample(SCHEMA, frame)
    return records_from_frame(frame.dropna(), SCHEMA)


@dataclass
class Served:
    client: TestClient
    store: ModelStore
    version: str

    def drift(self) -> dict[str, Any]:
        response = self.client.get("/drift")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def score(self, instances: list[dict[str, Any]]) -> None:
        response = self.client.post("/predict/batch", json={"instances": instances})
        assert response.status_code == 200, response.text


@pytest.fixture
def serve(tmp_path: Path, make_settings: Callable[..., Any], models: Any) -> Iterator[Callable[..., Served]]:
    """``serve(artifact=None, **settings)``: an app over a fresh store whose champion is trained model 0
    (or ``artifact``)."""
    with contextlib.ExitStack() as running:

        def start(artifact: ModelArtifact | None = None, **overrides: Any) -> Served:
            values = {"reload_interval_s": NO_POLLING_S, "drift_min_rows": MIN_ROWS, **overrides}
            settings = make_settings(tmp_path / "home", **values)
            store = build_model_store(settings)
            if artifact is None:
                version = models.publish(store, 0)
            else:
                version = store.save(artifact).id
                store.promote(version, reason="test")
            client = running.enter_context(TestClient(create_app(settings)))
            return Served(client, store, version)

        yield start


def test_drift_counts_each_scored_record_and_says_when_there_are_too_few(serve: Callable[..., Served]) -> None:
    served = serve()
    for _ in range(5):
        assert served.client.post("/predict", json=EXAMPLE).status_code == 200
    assert served.client.post("/predict", json={**EXAMPLE, "quiz_scores": 1000}).status_code == 422

    report = served.drift()

    assert report["model_version"] == served.version
    assert report["rows"] == 5  # the refused record was never scored, so never counted
    assert report["status"] == "too_few_rows"
    assert report["min_rows"] == MIN_ROWS
    assert [f["feature"] for f in report["features"]] == SCHEMA.feature_names
    assert {(f["status"], f["rows"]) for f in report["features"]} == {("too_few_rows", 5)}


def test_a_fresh_sample_of_the_training_distribution_is_ok(serve: Callable[..., Served]) -> None:
    fresh = serve()
    fresh.score(_instances(shift=False))
    fresh_report = fresh.drift()

    assert fresh_report["status"] == "ok", fresh_report
    assert fresh_report["rows"] == len(_instances(shift=False))
    assert {f["status"] for f in fresh_report["features"]} == {"ok"}


def test_a_shifted_sample_drifts_on_the_shifted_features(serve: Callable[..., Served]) -> None:
    served = serve()
    instances = _instances(shift=True)
    # One at a time through /predict for a part (the per-request path), the rest in a batch.
    for instance in instances[:300]:
        assert served.client.post("/predict", json=instance).status_code == 200
    served.score(instances[300:])

    report = served.drift()

    assert report["status"] == "drift"
    assert report["rows"] == len(instances)
    drifted = {f["feature"] for f in report["features"] if f["status"] == "drift"}
    assert drifted == {"time_spent_on_course", "course_category"}


def test_a_hot_reload_starts_a_fresh_summary_against_the_new_version(serve: Callable[..., Served], models: Any) -> None:
    served = serve()
    served.score(_instances(shift=True))
    assert served.drift()["status"] == "drift"
    newer = models.save(served.store, 1)
    served.store.promote(newer)

    assert served.client.post("/admin/reload").json()["model_version"] == newer
    after_reload = served.drift()
    served.score(_instances(shift=False, rows=300))
    later = served.drift()

    assert (after_reload["model_version"], after_reload["rows"], after_reload["status"]) == (newer, 0, "too_few_rows")
    assert all(f["psi"] is None for f in after_reload["features"])
    assert (later["model_version"], later["rows"]) == (newer, len(_instances(shift=False, rows=300)))


def test_a_version_without_a_reference_gets_a_clear_answer_not_an_error(
    serve: Callable[..., Served], models: Any
) -> None:
    old = models.artifacts[0]
    artifact = ModelArtifact(old.manifest.model_copy(update={"reference": None}), old.files)
    served = serve(artifact)
    assert served.client.post("/predict", json=EXAMPLE).status_code == 200

    report = served.drift()

    assert (report["model_version"], report["status"], report["features"]) == (served.version, "no_reference", [])
    assert "retrain" in report["detail"]


def test_drift_needs_the_api_key_when_one_is_set(serve: Callable[..., Served]) -> None:
    served = serve(api_key=KEY)
    assert served.client.get("/drift").status_code == 401
    answer = served.client.get("/drift", headers={"X-API-Key": KEY})
    assert answer.status_code == 200
    assert answer.json()["model_version"] == served.version


def test_drift_without_a_model_is_503(tmp_path: Path, make_settings: Callable[..., Any]) -> None:
    with TestClient(create_app(make_settings(tmp_path / "empty"))) as client:
        answer = client.get("/drift")
    assert answer.status_code == 503
    assert answer.json()["code"] == "model_not_loaded"


def test_metrics_show_the_drift_gauges_of_every_feature(
    serve: Callable[..., Served], read_metric: Callable[..., float]
) -> None:
    served = serve()
    before = served.client.get("/metrics").text
    served.score(_instances(shift=True))
    report = served.drift()  # folds what is pending: the gauges now match the report

    text = served.client.get("/metrics").text

    assert read_metric(before, "ccml_drift_live_rows") == 0
    for feature in SCHEMA.feature_names:
        assert f'ccml_drift_psi{{feature="{feature}"}} NaN' in before
    assert read_metric(text, "ccml_drift_live_rows") == report["rows"]
    for feature in report["features"]:
        assert read_metric(text, "ccml_drift_psi", feature=feature["feature"]) == pytest.approx(feature["psi"])


def test_the_summary_stays_bounded_under_requests_through_the_api(serve: Callable[..., Served]) -> None:
    served = serve()
    monitor = served.client.app.state.drift  # type: ignore[attr-defined]
    instances = _instances(shift=False)
    summary = monitor.summary(monitor.watcher.current)
    size = summary.nbytes()
    most_pending = 0
    for instance in instances[:600]:
        assert served.client.post("/predict", json=instance).status_code == 200
        most_pending = max(most_pending, summary.pending)

    assert summary.rows + summary.pending == 600
    assert most_pending < summary.fold_every
    assert summary.nbytes() == size
    assert served.drift()["rows"] == 600
