"""A real ``ccml serve`` process on a free port, spoken to over HTTP: one worker, two workers,
and a hot swap of the champion under load."""

from __future__ import annotations

import json
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccml.api.body import body_limit
from ccml.core.components import build_model_store
from ccml.core.schema import load_schema
from ccml.core.settings import Settings
from tests.api.conftest import metric_samples

pytestmark = pytest.mark.integration

EXAMPLE = load_schema().example_record()
GRACEFUL_EXIT = {0, -signal.SIGTERM}  # uvicorn re-raises the signal after a graceful shutdown


def poll(condition: Callable[[], bool], timeout: float, what: str, server: Any = None) -> None:
    """Wait for ``condition`` with a deadline; on timeout fail, showing the server's log tail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            log = f"\n{server.logs()[-3000:]}" if server is not None else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}{log}")
        time.sleep(0.02)


def log_events(server: Any) -> list[dict[str, Any]]:
    events = []
    for line in server.logs().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


@dataclass
class SingleWorker:
    server: Any
    version: str


@pytest.fixture(scope="module")
def single_worker(
    tmp_path_factory: pytest.TempPathFactory,
    make_settings: Callable[..., Settings],
    models: Any,
    ccml_serve: Callable[..., Any],
) -> Iterator[SingleWorker]:
    """One ``ccml serve`` process shared by the module's one-worker tests."""
    settings = make_settings(tmp_path_factory.mktemp("single-worker") / "home")
    version = models.publish(build_model_store(settings))
    server = ccml_serve(settings.home)
    try:
        yield SingleWorker(server, version)
    finally:
        server.stop()


def test_ccml_serve_answers_predictions_docs_and_openapi_over_http(single_worker: SingleWorker) -> None:
    with httpx.Client(base_url=single_worker.server.url, timeout=10) as client:
        ready = client.get("/ready")
        prediction = client.post("/predict", json=EXAMPLE, headers={"X-Request-ID": "over-http-1"})
        batch = client.post("/predict/batch", json={"instances": [EXAMPLE, EXAMPLE]})
        docs = client.get("/docs")
        openapi = client.get("/openapi.json")
        health = client.get("/health")

    assert ready.json() == {"status": "ready", "model_version": single_worker.version}
    assert prediction.status_code == 200
    assert prediction.json()["model_version"] == single_worker.version
    assert prediction.json()["prediction"] in {"Completed", "Not Completed"}
    assert prediction.headers["x-request-id"] == "over-http-1"
    assert batch.status_code == 200
    assert [answer["probability"] for answer in batch.json()["predictions"]] == pytest.approx(
        [prediction.json()["probability"]] * 2, abs=1e-12
    )
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert openapi.status_code == 200
    assert {"/predict", "/predict/batch", "/metrics"} <= set(openapi.json()["paths"])
    assert health.json() == {"status": "ok"}


def test_ccml_serve_writes_one_json_log_line_per_request(single_worker: SingleWorker) -> None:
    server = single_worker.server
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.post("/predict", json=EXAMPLE, headers={"X-Request-ID": "logged-1"})
        client.post("/predict", json={"unknown": 1}, headers={"X-Request-ID": "logged-2"})

    def both_logged() -> bool:
        ids = {event.get("request_id") for event in log_events(server)}
        return {"logged-1", "logged-2"} <= ids

    poll(both_logged, 10, "the request log lines", server)
    events = log_events(server)
    finished = {event["request_id"]: event for event in events if event["event"] == "request_finished"}
    assert finished["logged-1"]["method"] == "POST"
    assert finished["logged-1"]["route"] == "/predict"
    assert finished["logged-1"]["status"] == 200
    assert finished["logged-1"]["model_version"] == single_worker.version
    assert finished["logged-1"]["latency_ms"] > 0
    assert finished["logged-2"]["status"] == 422
    assert sum(event.get("request_id") == "logged-1" for event in events) == 1


def test_ccml_serve_rejects_bad_bodies_over_http_and_keeps_serving(single_worker: SingleWorker) -> None:
    oversize = json.dumps(EXAMPLE).encode() + b" " * body_limit(load_schema(), Settings().max_batch, None)

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(oversize), 65536):
            yield oversize[start : start + 65536]

    url = single_worker.server.url
    with httpx.Client(base_url=url, timeout=10, headers={"content-type": "application/json"}) as client:
        malformed = client.post("/predict", content=b'{"quiz_scores": ')
        with_length = client.post("/predict", content=oversize)
        streamed = client.post("/predict", content=chunked())
    after = httpx.post(f"{url}/predict", json=EXAMPLE, timeout=10)

    assert malformed.status_code == 400
    assert malformed.json()["code"] == "invalid_json"
    for response in (with_length, streamed):
        assert response.status_code == 413
        assert response.json()["code"] == "body_too_large"
    assert "content-length" not in streamed.request.headers
    assert after.status_code == 200


def test_ccml_serve_with_two_workers_serves_keep_alive_requests_and_aggregates_metrics(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    models: Any,
    ccml_serve: Callable[..., Any],
    read_metric: Callable[..., float],
) -> None:
    settings = make_settings(tmp_path / "home")
    version = models.publish(build_model_store(settings))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    server = ccml_serve(settings.home, workers=2, env={"TMPDIR": str(scratch)})
    requests = 40
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answers = [client.post("/predict", json=EXAMPLE) for _ in range(requests)]
            docs = client.get("/docs")
            openapi = client.get("/openapi.json")
            health_ms = []
            for _ in range(30):
                started = time.perf_counter()
                assert client.get("/health").status_code == 200
                health_ms.append((time.perf_counter() - started) * 1000)

            def both_workers_loaded() -> bool:
                text = client.get("/metrics").text
                return text.count(f'version="{version}"') >= 2

            poll(both_workers_loaded, 90, "both workers to report the loaded model", server)
            metrics = client.get("/metrics").text
    finally:
        exit_status = server.stop()

    assert [answer.status_code for answer in answers] == [200] * requests
    assert {answer.json()["model_version"] for answer in answers} == {version}
    assert "swagger" in docs.text.lower()
    assert "/predict" in openapi.json()["paths"]
    # Without TCP_NODELAY on accepted connections every keep-alive answer waits ~40 ms for a
    # delayed ACK (uvicorn issue #3149); a cheap route answers in about a millisecond.
    assert statistics.median(health_ms) < 30
    # Whichever worker answered the scrape, it reports both workers' counts.
    predict_ok = {"method": "POST", "route": "/predict", "status": "200"}
    assert read_metric(metrics, "ccml_http_requests_total", **predict_ok) == requests
    assert read_metric(metrics, "ccml_model_reloads_total", outcome="success") == 2
    # The drift gauges are per worker (a pid label each): every worker summarises the inputs it scored.
    drift_rows = [dict(labels) for (name, labels) in metric_samples(metrics) if name == "ccml_drift_live_rows"]
    psi_series = [dict(labels) for (name, labels) in metric_samples(metrics) if name == "ccml_drift_psi"]
    assert len({labels["pid"] for labels in drift_rows}) == 2
    assert len(psi_series) == 2 * len(load_schema().features)
    assert exit_status in GRACEFUL_EXIT
    assert not list(scratch.glob("ccml-metrics-*")), "the multi-process metrics directory outlived the server"


@dataclass
class Load:
    """Client threads, each with its own keep-alive ``httpx.Client``, posting /predict until stopped."""

    url: str
    threads: int = 4
    seen: list[list[str]] = field(init=False)  # per thread: model_version of each answer, in order
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seen = [[] for _ in range(self.threads)]

    def _run(self, versions: list[str]) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/predict", json=EXAMPLE)
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")
                        continue
                    versions.append(response.json()["model_version"])
                except Exception as exc:  # recorded, so the test reports it instead of a silent thread
                    self.failures.append(repr(exc))

    def start(self) -> None:
        for versions in self.seen:
            worker = threading.Thread(target=self._run, args=(versions,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)

    @property
    def answered(self) -> int:
        return sum(len(versions) for versions in self.seen)

    @property
    def total(self) -> int:
        return self.answered + len(self.failures)

    def wait_for_more(self, count: int, timeout: float = 60) -> None:
        target = self.total + count
        poll(lambda: self.total >= target or bool(self.failures), timeout, f"{count} more requests")

    def wait_until_every_thread_sees(self, version: str, timeout: float = 30) -> None:
        def every_thread() -> bool:
            return bool(self.failures) or all(versions and versions[-1] == version for versions in self.seen)

        poll(every_thread, timeout, f"every client thread to be answered by {version}")


def test_hot_swap_under_load_answers_every_request_and_only_moves_forward(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    models: Any,
    ccml_serve: Callable[..., Any],
    read_metric: Callable[..., float],
) -> None:
    settings = make_settings(tmp_path / "home")
    store = build_model_store(settings)
    initial = models.publish(store, 0)
    upgrades = [models.save(store, index) for index in (1, 0, 1)]
    corrupt = models.save_corrupt(store, settings)
    last_good = models.save(store, 0)
    promoted_in_order = [initial, *upgrades, last_good]
    assert promoted_in_order == sorted(promoted_in_order)  # version ids sort chronologically

    # The ONNX backend answers in microseconds where scikit-learn's per-call overhead costs
    # ~10 ms: the same reload path, and 2,000 requests fit in seconds on two cores.
    server = ccml_serve(settings.home, env={"CCML_RELOAD_INTERVAL_S": "0.2", "CCML_PREDICTOR": "onnx"})
    load = Load(server.url, threads=4)
    load.start()
    try:
        load.wait_for_more(200)
        for version in upgrades:
            store.promote(version, reason="hot-swap test")
            load.wait_until_every_thread_sees(version)
            load.wait_for_more(300)

        store.promote(corrupt, reason="hot-swap test: a corrupt version")

        def corrupt_refused() -> bool:
            text = httpx.get(f"{server.url}/metrics", timeout=10).text
            return read_metric(text, "ccml_model_reloads_total", outcome="failure") >= 1

        poll(corrupt_refused, 30, "the corrupt version to be refused", server)
        load.wait_for_more(300)

        store.promote(last_good, reason="hot-swap test: good again")
        load.wait_until_every_thread_sees(last_good)
        load.wait_for_more(max(200, 2000 - load.total))
        ready = httpx.get(f"{server.url}/ready", timeout=10)
    finally:
        load.stop()
        exit_status = server.stop()

    print(f"\nhot swap: {load.total} /predict requests over {load.threads} threads")
    assert load.failures == [], load.failures[:5]
    assert load.answered >= 2000
    served = set().union(*load.seen)
    assert corrupt not in served
    assert served == set(promoted_in_order)
    for versions in load.seen:
        assert versions == sorted(versions), "a client thread saw an older version after a newer one"
        assert versions[-1] == last_good
    assert ready.json()["model_version"] == last_good
    assert exit_status in GRACEFUL_EXIT, server.logs()[-3000:]
    events = log_events(server)
    refused = [event["version"] for event in events if event["event"] == "model_reload_failed"]
    reloaded = [event["version"] for event in events if event["event"] == "model_reloaded"]
    assert refused == [corrupt], server.logs()[-3000:]
    assert reloaded == promoted_in_order, server.logs()[-3000:]
