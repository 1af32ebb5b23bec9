"""Hostile champions against the real programs: ``ccml serve`` with every backend setting
(hot reload onto them, and start-up on them), and the ``ccml`` commands a user or a job runs
(``models show``, ``predict``, ``train``, ``retrain``). No marker file, no hang, no traceback;
the good model keeps answering."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccml.core.contracts import ModelStore
from ccml.core.schema import load_schema
from ccml.core.types import TrainingResult
from ccml.storage.local import LocalModelStore
from ccml.storage.s3 import S3ModelStore, make_client
from tests.api.conftest import CCML_SCRIPT, ServerProcess, metric_value
from tests.reliability.figures import FULL, record
from tests.reliability.hostile import KINDS, PORTABLE, plant, point_champion
from tests.reliability.processes import environment, serve, wait_alive

pytestmark = pytest.mark.integration

EXAMPLE = load_schema().example_record()
BACKENDS: dict[str, dict[str, str]] = {
    "onnx": {"CCML_PREDICTOR": "onnx"},
    "sklearn": {"CCML_PREDICTOR": "sklearn"},
    "onnx+fallback": {"CCML_PREDICTOR": "onnx", "CCML_ONNX_FALLBACK": "true"},
}
# Start-up on a hostile champion costs a process start per kind: all kinds under `make reliability`.
STARTUP_KINDS = KINDS if FULL else ("junk_onnx", "pickle_payload", "fifo")
COMMAND_KINDS = KINDS if FULL else ("pickle_payload", "untrusted_skops", "fifo", "path_traversal")
RETRAIN_KINDS = PORTABLE if FULL else ("pickle_payload", "not_a_pipeline")
FAST_TRAINER = json.dumps({"n_estimators": 10, "n_jobs": 1})


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def _home_with(tmp_path: Path, name: str, training: TrainingResult) -> tuple[Path, LocalModelStore, str]:
    home = tmp_path / name
    store = LocalModelStore(home / "models")
    good = store.save(training.artifact).id
    store.promote(good, reason="the good model")
    return home, store, good


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_ccml_serve_keeps_the_good_model_when_hostile_versions_are_promoted(
    backend: str, training: TrainingResult, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    marker = tmp_path / "pwned"
    home, store, good = _home_with(tmp_path, "home", training)
    server = serve(home, tmp_path, BACKENDS[backend])
    servers.append(server)
    assert server.wait_ready() == good
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for kind in KINDS:
            point_champion(store, plant(store, training.artifact, kind, marker))
            reload = client.post("/admin/reload")
            assert reload.status_code == 200, reload.text
            assert reload.json()["model_version"] == good
            assert reload.json()["error"], f"{kind}: the reload reported no refusal"
            answer = client.post("/predict", json=EXAMPLE)
            assert answer.status_code == 200, answer.text
            assert answer.json()["model_version"] == good
        failures = metric_value(client.get("/metrics").text, "ccml_model_reloads_total", outcome="failure")
    assert failures >= len(KINDS)
    assert not marker.exists()
    record("hostile_artifacts", f"serve {backend}: hot reload", cases=len(KINDS), failures=0)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_ccml_serve_started_on_a_hostile_champion_stays_up_and_is_not_ready(
    backend: str, training: TrainingResult, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    marker = tmp_path / "pwned"
    for kind in STARTUP_KINDS:
        home, store, _good = _home_with(tmp_path, f"home-{kind}", training)
        point_champion(store, plant(store, training.artifact, kind, marker))
        server = serve(home, tmp_path, BACKENDS[backend])
        servers.append(server)
        wait_alive(server)
        ready = httpx.get(f"{server.url}/ready", timeout=10)
        assert ready.status_code == 503, f"{kind}: {ready.status_code} {ready.text}"
        assert httpx.post(f"{server.url}/predict", json=EXAMPLE, timeout=10).status_code == 503
        assert server.process.poll() is None, f"{kind}: the server exited"
        server.stop()
    assert not marker.exists()
    record("hostile_artifacts", f"serve {backend}: start-up", cases=len(STARTUP_KINDS), failures=0)


def _run(args: list[str], home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CCML_SCRIPT), *args],
        env=environment(home, env or {}),
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=180,  # a hang fails here, not at CI's deadline
        check=False,
    )


def _no_crash(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert "Traceback" not in result.stderr, f"{what}: {result.stderr[-2000:]}"
    assert result.returncode in (0, 1), f"{what}: exit {result.returncode}: {result.stderr[-2000:]}"


def _commands_on(kind: str, training: TrainingResult, tmp_path: Path, csv: Path) -> int:
    marker = tmp_path / f"pwned-{kind}"
    home, store, good = _home_with(tmp_path, f"cli-{kind}", training)
    hostile = plant(store, training.artifact, kind, marker)
    point_champion(store, hostile)
    show = _run(["models", "show", "champion"], home)
    _no_crash(show, f"{kind}: models show")
    for backend, env in BACKENDS.items():
        predicted = _run(["predict", str(csv), "--limit", "3"], home, env)
        _no_crash(predicted, f"{kind}: predict ({backend})")
        assert predicted.returncode == 1, f"{kind}: predict ({backend}) used the hostile champion"
        assert "error:" in predicted.stderr
    trained = _run(["train", "--data", str(csv), "--json"], home, {"CCML_TRAINER_PARAMS": FAST_TRAINER})
    _no_crash(trained, f"{kind}: train")
    assert trained.returncode == 0, trained.stderr[-2000:]
    summary = json.loads(trained.stdout)
    assert summary["promoted"], summary["reason"]
    assert store.resolve("champion") == summary["version"] not in (good, hostile)
    assert not marker.exists(), f"{kind} ran code in a ccml command"
    return 2 + len(BACKENDS)


def test_ccml_commands_refuse_hostile_champions_and_train_past_them(
    training: TrainingResult, tmp_path: Path, sample_csv: Path
) -> None:
    with ThreadPoolExecutor(2) as pool:  # each command is a process start: two at a time
        counts = list(pool.map(lambda kind: _commands_on(kind, training, tmp_path, sample_csv), COMMAND_KINDS))
    record("hostile_artifacts", "ccml commands (local)", cases=sum(counts), failures=0)


def _s3_home(tmp_path: Path, bucket: str) -> dict[str, str]:
    return {"CCML_STORAGE": "s3", "CCML_S3_BUCKET": bucket, "CCML_TRAINER_PARAMS": FAST_TRAINER}


def test_ccml_retrain_and_serve_on_s3_refuse_hostile_champions(
    training: TrainingResult,
    tmp_path: Path,
    sample_csv: Path,
    s3_bucket: str,
    s3_store: S3ModelStore,
    servers: list[ServerProcess],
) -> None:
    marker = tmp_path / "pwned"
    env = _s3_home(tmp_path, s3_bucket)
    home = tmp_path / "s3-home"
    home.mkdir()
    first = s3_store.save(training.artifact).id
    s3_store.promote(first)
    server = serve(home, tmp_path, env)
    servers.append(server)
    assert server.wait_ready() == first
    cases = 0
    for index, kind in enumerate(PORTABLE):
        store: ModelStore = s3_store
        hostile = plant(store, training.artifact, kind, marker)
        point_champion(store, hostile)
        reload = httpx.post(f"{server.url}/admin/reload", timeout=30).json()
        assert reload["error"], f"{kind}: the reload reported no refusal"
        served = httpx.post(f"{server.url}/predict", json=EXAMPLE, timeout=30).json()["model_version"]
        assert served == reload["model_version"] != hostile  # a good version: the first, or a retrained one
        assert served is not None
        cases += 1
        if kind not in RETRAIN_KINDS:
            continue
        key = f"incoming/retrain-{index}.csv"
        make_client().put_object(Bucket=s3_bucket, Key=key, Body=sample_csv.read_bytes())
        event = tmp_path / f"event-{index}.json"
        event.write_text(json.dumps({"Records": [_record(s3_bucket, key)]}))
        retrained = _run(["retrain", "--event", str(event), "--json"], home, env)
        _no_crash(retrained, f"{kind}: retrain")
        assert retrained.returncode == 0, retrained.stderr[-2000:]
        results = json.loads(retrained.stdout)["results"]
        assert [r["status"] for r in results] == ["trained"], results
        assert s3_store.resolve("champion") != hostile
        cases += 1
    assert not marker.exists()
    record("hostile_artifacts", "S3: serve + ccml retrain", cases=cases, failures=0)


def _record(bucket: str, key: str) -> dict[str, Any]:
    head = make_client().head_object(Bucket=bucket, Key=key)
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": key, "size": head["ContentLength"], "eTag": head["ETag"].strip('"')},
        },
    }
