"""Hot reload in one app: a promoted version replaces the served one; a broken one never does."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from ccml.api import create_app
from ccml.core.components import build_model_store
from ccml.core.contracts import ModelStore
from ccml.core.schema import load_schema
from ccml.core.settings import Settings

EXAMPLE = load_schema().example_record()
# Long enough that only POST /admin/reload can be the reason a test sees a new version.
NO_POLLING_S = 3600.0


@dataclass
class Served:
    client: TestClient
    store: ModelStore
    settings: Settings
    version: str

    def predicted_version(self) -> str:
        response = self.client.post("/predict", json=EXAMPLE)
        assert response.status_code == 200, response.text
        version: str = response.json()["model_version"]
        return version

    def reload(self) -> dict[str, Any]:
        response = self.client.post("/admin/reload")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def metrics(self) -> str:
        return self.client.get("/metrics").text


@pytest.fixture
def serve(tmp_path: Path, make_settings: Callable[..., Settings], models: Any) -> Iterator[Callable[..., Served]]:
    """``serve(**settings)``: an app over a fresh store whose champion is trained model 0."""
    with contextlib.ExitStack() as running:

        def start(**overrides: Any) -> Served:
            settings = make_settings(tmp_path / "home", **overrides)
            store = build_model_store(settings)
            version = models.publish(store, 0)
            client = running.enter_context(TestClient(create_app(settings)))
            return Served(client, store, settings, version)

        yield start


def test_admin_reload_serves_a_newly_promoted_version_on_the_next_request(
    serve: Callable[..., Served], models: Any
) -> None:
    served = serve(reload_interval_s=NO_POLLING_S)
    newer = models.save(served.store, 1)
    served.store.promote(newer)

    assert served.predicted_version() == served.version
    assert served.reload() == {"changed": True, "model_version": newer, "error": None}
    assert served.predicted_version() == newer
    assert served.client.get("/ready").json()["model_version"] == newer
    assert served.client.get("/model").json()["version"] == newer


def test_admin_reload_without_a_move_changes_nothing(serve: Callable[..., Served]) -> None:
    served = serve(reload_interval_s=NO_POLLING_S)

    assert served.reload() == {"changed": False, "model_version": served.version, "error": None}
    assert served.predicted_version() == served.version


def test_reload_moves_the_model_info_metric_and_counts_a_success(
    serve: Callable[..., Served], models: Any, read_metric: Callable[..., float]
) -> None:
    served = serve(reload_interval_s=NO_POLLING_S)
    successes = read_metric(served.metrics(), "ccml_model_reloads_total", outcome="success")
    newer = models.save(served.store, 1)
    served.store.promote(newer)

    served.reload()

    text = served.metrics()
    assert read_metric(text, "ccml_model_reloads_total", outcome="success") == successes + 1
    assert read_metric(text, "ccml_model_info", version=newer) == 1
    assert read_metric(text, "ccml_model_info", version=served.version) == 0


def test_background_poll_picks_up_a_promotion_without_an_admin_call(serve: Callable[..., Served], models: Any) -> None:
    served = serve(reload_interval_s=0.2)
    newer = models.save(served.store, 1)
    served.store.promote(newer)

    deadline = time.monotonic() + 10
    while served.predicted_version() != newer and time.monotonic() < deadline:
        time.sleep(0.05)

    assert served.predicted_version() == newer


def test_rollback_is_served_after_reload(serve: Callable[..., Served], models: Any) -> None:
    served = serve(reload_interval_s=NO_POLLING_S)
    newer = models.save(served.store, 1)
    served.store.promote(newer)
    assert served.reload()["model_version"] == newer

    served.store.rollback()

    assert served.reload() == {"changed": True, "model_version": served.version, "error": None}
    assert served.predicted_version() == served.version


def test_corrupt_champion_is_refused_and_the_old_version_keeps_serving(
    serve: Callable[..., Served], models: Any, read_metric: Callable[..., float]
) -> None:
    served = serve(reload_interval_s=NO_POLLING_S)
    failures = read_metric(served.metrics(), "ccml_model_reloads_total", outcome="failure")
    corrupt = models.save_corrupt(served.store, served.settings)
    served.store.promote(corrupt)

    with structlog.testing.capture_logs() as logs:
        result = served.reload()

    assert result["changed"] is False
    assert result["model_version"] == served.version
    assert corrupt in result["error"]
    assert served.predicted_version() == served.version
    assert served.client.get("/ready").json()["model_version"] == served.version
    assert read_metric(served.metrics(), "ccml_model_reloads_total", outcome="failure") == failures + 1
    [failed] = [event for event in logs if event["event"] == "model_reload_failed"]
    assert (failed["version"], failed["serving"]) == (corrupt, served.version)


def test_good_promotion_after_a_corrupt_one_is_served(serve: Callable[..., Served], models: Any) -> None:
    served = serve(reload_interval_s=NO_POLLING_S)
    corrupt = models.save_corrupt(served.store, served.settings)
    served.store.promote(corrupt)
    assert served.reload()["error"]
    good = models.save(served.store, 1)
    served.store.promote(good)

    assert served.reload() == {"changed": True, "model_version": good, "error": None}
    assert served.predicted_version() == good


def test_background_poll_refuses_a_corrupt_champion_and_counts_the_failure_once(
    serve: Callable[..., Served], models: Any, read_metric: Callable[..., float]
) -> None:
    served = serve(reload_interval_s=0.2)
    corrupt = models.save_corrupt(served.store, served.settings)
    served.store.promote(corrupt)

    deadline = time.monotonic() + 10
    while (
        read_metric(served.metrics(), "ccml_model_reloads_total", outcome="failure") == 0
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    # Several more poll intervals: the same broken version is not loaded (nor counted) again.
    settle = time.monotonic() + 1.0
    while time.monotonic() < settle:
        assert served.predicted_version() == served.version
        time.sleep(0.05)

    assert read_metric(served.metrics(), "ccml_model_reloads_total", outcome="failure") == 1


def test_champion_of_another_schema_is_refused(serve: Callable[..., Served], second_schema_models: Any) -> None:
    served = serve(reload_interval_s=NO_POLLING_S)
    foreign = second_schema_models.publish(served.store)

    result = served.reload()

    assert result["model_version"] == served.version
    assert "another feature schema" in result["error"]
    assert foreign in result["error"]
    assert served.predicted_version() == served.version


def test_app_started_before_the_first_champion_becomes_ready_after_a_promotion(
    tmp_path: Path, make_settings: Callable[..., Settings], models: Any
) -> None:
    settings = make_settings(tmp_path / "home", reload_interval_s=NO_POLLING_S)
    store = build_model_store(settings)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 503
        assert client.post("/predict", json=EXAMPLE).status_code == 503
        version = models.publish(store)

        assert client.post("/admin/reload").json() == {"changed": True, "model_version": version, "error": None}
        assert client.get("/ready").json() == {"status": "ready", "model_version": version}
        assert client.post("/predict", json=EXAMPLE).json()["model_version"] == version
