"""Load with faults: a real ``ccml serve`` answers a bounded stream of ``/predict`` requests
while a chaos thread promotes good versions, points the champion at a corrupt version and at a
junk-ONNX version, and makes the store fail for a while (alias missing, alias unreadable,
versions folder gone). Every request must succeed, each answered by a good version."""

from __future__ import annotations

import os
import shutil
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest

from ccml.core.artifact import MODEL_FILE
from ccml.core.schema import load_schema
from ccml.core.types import TrainingResult
from ccml.storage.local import LocalModelStore
from tests.api.conftest import ServerProcess
from tests.reliability.figures import record, scale
from tests.reliability.hostile import plant, point_champion
from tests.reliability.processes import serve

pytestmark = pytest.mark.integration

EXAMPLE = load_schema().example_record()
REQUESTS = scale(2_000, 10_000)
CLIENTS = 4
CYCLES = 2
DEADLINE_S = scale(90, 300)  # a bound on the run, far above what it needs


class Chaos:
    """Cycles through promotions and faults until told to stop; remembers every good version."""

    def __init__(self, store: LocalModelStore, training: TrainingResult, marker: Path) -> None:
        self.store = store
        self.training = training
        self.marker = marker
        self.good: set[str] = {store.resolve("champion")}
        self.bad: set[str] = set()
        self.faults = 0
        self.cycles = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def _pause(self, seconds: float = 0.3) -> None:
        self.stop.wait(seconds)

    def _promote_good(self) -> str:
        version = self.store.save(self.training.artifact).id
        self.good.add(version)
        self.store.promote(version, reason="chaos: good")
        return version

    def _corrupt(self) -> None:
        version = self.store.save(self.training.artifact).id
        path = self.store.root / "versions" / version / MODEL_FILE
        path.write_bytes(bytes(reversed(path.read_bytes())))
        onnx = path.with_name("model.onnx")
        onnx.write_bytes(bytes(reversed(onnx.read_bytes())))
        self.bad.add(version)
        point_champion(self.store, version)

    def _junk_onnx(self) -> None:
        version = plant(self.store, self.training.artifact, "junk_onnx", self.marker)
        self.bad.add(version)
        point_champion(self.store, version)

    def _store_outage(self) -> None:
        for folder in ("aliases", "versions"):  # each missing for a while, then back
            path = self.store.root / folder
            hidden = path.with_name(f"{folder}.away")
            os.rename(path, hidden)
            self._pause(0.5)
            os.rename(hidden, path)
        alias = self.store.root / "aliases" / "champion.json"
        saved = alias.read_bytes()
        alias.write_bytes(b"{not json")  # unreadable alias
        self._pause(0.5)
        alias.write_bytes(saved)

    def run(self) -> None:
        steps = (self._promote_good, self._corrupt, self._junk_onnx, self._store_outage, self._promote_good)
        try:
            while not self.stop.is_set():
                for step in steps:
                    if self.stop.is_set():
                        return
                    step()
                    self.faults += step is not self._promote_good
                    self._pause()
                self.cycles += 1
        except BaseException as exc:  # surfaced by the test, not lost on a thread
            self.error = exc


def test_serving_survives_promotions_corrupt_versions_and_store_outages_under_load(
    training: TrainingResult, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    store = LocalModelStore(home / "models")
    store.promote(store.save(training.artifact).id, reason="first")
    server: ServerProcess = serve(home, tmp_path, {"CCML_RELOAD_INTERVAL_S": "0.05", "CCML_LOG_LEVEL": "warning"})
    try:
        server.wait_ready()
        chaos = Chaos(store, training, tmp_path / "pwned")
        statuses: list[int] = []
        versions: list[str] = []
        latencies: list[float] = []
        lock = threading.Lock()
        deadline = time.monotonic() + DEADLINE_S

        def client() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                while time.monotonic() < deadline:
                    with lock:  # enough requests, spread over at least two full rounds of faults
                        if len(statuses) >= REQUESTS and chaos.cycles >= CYCLES:
                            return
                    started = time.perf_counter()
                    response = http.post("/predict", json=EXAMPLE)
                    elapsed = time.perf_counter() - started
                    with lock:
                        statuses.append(response.status_code)
                        latencies.append(elapsed)
                        if response.status_code == 200:
                            versions.append(response.json()["model_version"])

        chaos_thread = threading.Thread(target=chaos.run, daemon=True)
        clients = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        chaos_thread.start()
        started = time.monotonic()
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(DEADLINE_S + 30)
        seconds = time.monotonic() - started
        chaos.stop.set()
        chaos_thread.join(30)
        # After every fault, hot reload still works: the next good promotion is served.
        final = chaos._promote_good()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            caught_up = time.monotonic() + 30
            while http.post("/predict", json=EXAMPLE).json()["model_version"] != final:
                assert time.monotonic() < caught_up, "the last promotion was never served"
                time.sleep(0.05)
    finally:
        # The store must be whole again before the server stops (an outage may be mid-way).
        for folder in ("aliases", "versions"):
            away = store.root / f"{folder}.away"
            if away.exists():
                shutil.move(away, store.root / folder)
        server.stop()

    failed = sum(status != 200 for status in statuses)
    p99_ms = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else float("nan")
    record(
        "load_with_faults",
        "ccml serve, 1 worker",
        cases=len(statuses),
        failures=failed,
        faults_injected=chaos.faults,
        versions_served=len(set(versions)),
        p99_ms=round(p99_ms, 2),
        req_per_s=round(len(statuses) / seconds, 1),
    )
    assert chaos.error is None, chaos.error
    assert len(statuses) >= REQUESTS, f"only {len(statuses)} requests within {DEADLINE_S} s"
    assert failed == 0, {status: statuses.count(status) for status in set(statuses)}
    assert set(versions) <= chaos.good, f"served a bad version: {set(versions) & chaos.bad}"
    assert chaos.cycles >= CYCLES, "the chaos thread did not get through its faults"
    assert len(set(versions)) >= 2, "no promotion was picked up under load"
    assert not (tmp_path / "pwned").exists()
