"""Fixtures of the REST API tests: an isolated environment, fast-trained models copied into
each test's own store, and real ``ccml serve`` processes that are always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ccml.core.artifact import MODEL_FILE, ModelArtifact
from ccml.core.components import build_model_store, build_trainer
from ccml.core.contracts import ModelStore
from ccml.core.settings import Settings
from ccml.models.training.synthetic import generate
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.local import LocalDataSource

REPO = Path(__file__).resolve().parents[2]
SECOND_SCHEMA = REPO / "examples" / "schemas" / "kddcup2015.toml"
CCML_SCRIPT = Path(sys.executable).parent / "ccml"
TRAINING_ROWS = 600


def _isolate(monkeypatch: pytest.MonkeyPatch, cwd: Path) -> None:
    """No CCML_* variable, no multi-process metrics directory, no stray .env file."""
    for name in list(os.environ):
        if name.upper().startswith("CCML_") or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)
    monkeypatch.chdir(cwd)


def _settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "min_rows": 50,
        "trainer_params": {"n_estimators": 10},
        "reload_interval_s": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module", autouse=True)
def _api_isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Module-wide isolation, so module-scoped apps and stores are built in a clean environment too."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(scope="session")
def make_settings() -> Callable[..., Settings]:
    """``make_settings(home, **overrides)``: test settings, built from keyword arguments only."""
    return _settings


def _train(root: Path, schema_file: Path | None, seeds: list[int]) -> list[ModelArtifact]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, root)
        settings = _settings(root / "home", schema_file=schema_file)
        store = build_model_store(settings)
        workflow = RetrainWorkflow.from_settings(settings, store, build_trainer(settings))
        artifacts = []
        for seed in seeds:
            data = root / f"students-{seed}.csv"
            generate(settings.feature_schema(), TRAINING_ROWS, seed).to_csv(data, index=False)
            outcome = workflow.run(LocalDataSource(data), force=True)
            artifacts.append(store.load(outcome.version))
        return artifacts


@dataclass
class Models:
    """Models trained once per session; tests put copies of them into their own stores."""

    artifacts: list[ModelArtifact]

    def save(self, store: ModelStore, index: int = 0) -> str:
        """A new version (a fresh, chronologically later id) holding trained model ``index``."""
        return store.save(self.artifacts[index % len(self.artifacts)]).id

    def publish(self, store: ModelStore, index: int = 0) -> str:
        """Save a new version and make it the champion."""
        version = self.save(store, index)
        store.promote(version, reason="test")
        return version

    def save_corrupt(self, store: ModelStore, settings: Settings) -> str:
        """A real version whose model file is then overwritten on disk (its checksum no longer matches)."""
        version = self.save(store)
        model_file = settings.home / "models" / "versions" / version / MODEL_FILE
        size = model_file.stat().st_size
        model_file.write_bytes(b"\x00corrupt\x00" * (size // 9 + 1))
        return version


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """Two random forests of the built-in schema, trained on different synthetic samples."""
    return Models(_train(tmp_path_factory.mktemp("trained"), None, [1, 2]))


@pytest.fixture(scope="session")
def second_schema_file() -> Path:
    """The KDD Cup 2015 example schema: another set of fields, ranges and categories."""
    return SECOND_SCHEMA


@pytest.fixture(scope="session")
def second_schema_models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """One model of the KDD Cup 2015 example schema: another schema's API, or a foreign champion."""
    return Models(_train(tmp_path_factory.mktemp("trained-kdd"), SECOND_SCHEMA, [4]))


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text as {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(value for (sample, have), value in metric_samples(text).items() if sample == name and wanted <= have)


@pytest.fixture(scope="session")
def read_metric() -> Callable[..., float]:
    """``read_metric(prometheus_text, name, **labels)``: see ``metric_value``."""
    return metric_value


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A ``ccml serve`` process in its own process group, logging to a file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def logs(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def wait_ready(self, timeout: float = 90.0) -> str:
        """Poll /ready until it answers 200; return the model version it serves.

        A few seconds on an idle machine; the generous deadline is for a busy one, where
        importing scikit-learn in two workers at once was measured to take over 40 s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"ccml serve exited with {self.process.returncode}:\n{self.logs()}")
            try:
                response = httpx.get(f"{self.url}/ready", timeout=2.0)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                version: str = response.json()["model_version"]
                return version
            time.sleep(0.05)
        pytest.fail(f"ccml serve was not ready within {timeout} s:\n{self.logs()}")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait; SIGKILL the process group if it does not stop. Returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        # Workers of a multi-worker server share the group: none may outlive the supervisor.
        deadline = time.monotonic() + timeout
        while _group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or no longer a group of ours
        return False
    return True


@pytest.fixture(scope="module")
def ccml_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """``ccml_serve(home, workers=1, env={}, launcher=None)``: a ready ``ccml serve`` process.

    Tests stop their servers themselves (``server.stop()`` in a ``finally``); any still
    running when the module ends are stopped here."""
    started: list[ServerProcess] = []
    tmp_path = tmp_path_factory.mktemp("ccml-serve")

    def start(
        home: Path, *, workers: int = 1, env: dict[str, str] | None = None, launcher: list[str] | None = None
    ) -> ServerProcess:
        port = free_port()
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.upper().startswith("CCML_") and name != "PROMETHEUS_MULTIPROC_DIR"
        }
        environment.update({"CCML_HOME": str(home), "CCML_LOG_FORMAT": "json", **(env or {})})
        log = tmp_path / f"ccml-serve-{port}.log"
        # ``launcher`` replaces the console script: a command that runs ``ccml`` with the arguments after it.
        command = [
            *(launcher or [str(CCML_SCRIPT)]),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        with log.open("wb") as sink:
            process = subprocess.Popen(
                command, env=environment, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
        started.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
