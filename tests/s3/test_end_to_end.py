"""End to end: a real ``ccml serve`` on the bucket's champion, the Lambda handler retraining
on uploads, and the running API following the champion (or refusing a tampered one).

Everything talks to moto's HTTP server: the API process through ``AWS_ENDPOINT_URL`` in its
environment, the in-process handler and the test's own store through the same variable.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import handlers.retrain
from ccml.core.artifact import MODEL_FILE
from ccml.core.components import build_data_source, build_trainer
from ccml.core.errors import DataValidationError
from ccml.core.schema import load_schema
from ccml.models.serving.records import records_from_frame
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.s3 import make_client
from tests.s3.helpers import (
    AWKWARD_KEY,
    CCML_SCRIPT,
    TARGET,
    FakeLambdaContext,
    invalid_frame,
    poll,
    s3_event,
    s3_record,
    s3_settings,
    store_for,
    student_frame,
    upload_csv,
)

pytestmark = pytest.mark.integration

RELOAD_INTERVAL_S = 0.3
DEADLINE_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningApi:
    process: subprocess.Popen[bytes]
    client: httpx.Client
    log: Path

    def served_version(self) -> str | None:
        """The model version /predict answers with, or None while nothing is served."""
        if self.process.poll() is not None:
            raise AssertionError(f"ccml serve exited with {self.process.returncode}:\n{self.log.read_text()}")
        try:
            response = self.client.post("/predict", json=load_schema().example_record())
        except httpx.TransportError:
            return None
        return str(response.json()["model_version"]) if response.status_code == 200 else None

    def wait_for_version(self, version: str) -> str | None:
        return poll(self.served_version, lambda served: served == version, DEADLINE_S, RELOAD_INTERVAL_S / 3)

    def versions_during(self, seconds: float) -> set[str | None]:
        """Every version /predict answered with over ``seconds`` (a few reload intervals)."""
        seen: set[str | None] = set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen.add(self.served_version())
            time.sleep(RELOAD_INTERVAL_S / 3)
        return seen

    def reload_failures(self) -> float:
        text = self.client.get("/metrics").text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "ccml_model_reloads_total" and sample.labels.get("outcome") == "failure"
        )


@pytest.fixture
def start_api(server_bucket: str, tmp_path: Path) -> Iterator[Callable[[], RunningApi]]:
    """``start_api()`` runs ``ccml serve`` on the bucket's champion; every process it started
    is terminated (then killed) however the test ends."""
    processes: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "CCML_STORAGE": "s3",
        "CCML_S3_BUCKET": server_bucket,
        "CCML_RELOAD_INTERVAL_S": str(RELOAD_INTERVAL_S),
        "CCML_LOG_FORMAT": "json",
    }

    def start() -> RunningApi:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(CCML_SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        return RunningApi(
            process, clients.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)), log
        )

    with contextlib.ExitStack() as clients:
        try:
            yield start
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=15)


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    [result] = handlers.retrain.handler(event, FakeLambdaContext())["results"]
    return result


def upload_event(bucket: str, key: str, frame: Any) -> dict[str, Any]:
    return s3_event(s3_record(bucket, key, upload_csv(bucket, key, frame)))


def test_api_follows_the_champion_the_handler_promotes_and_refuses_a_tampered_one(
    server_bucket: str, start_api: Callable[[], RunningApi], lambda_env: Any
) -> None:
    bucket = server_bucket
    store = store_for(bucket)

    # v1 through the workflow. A single stump, so that the gate's verdict on v2 (a forest)
    # is not a coin flip between two equally good models.
    upload_csv(bucket, "seed/v1.csv", student_frame(1))
    weak = s3_settings(bucket, trainer_params={"n_estimators": 1, "max_depth": 1})
    v1 = (
        RetrainWorkflow.from_settings(weak, store, build_trainer(weak))
        .run(build_data_source(weak, f"s3://{bucket}/seed/v1.csv"), force=True)
        .version
    )
    assert store.resolve("champion") == v1
    serve = start_api()
    assert serve.wait_for_version(v1) == v1

    # A CSV lands under incoming/ at an awkward key; the handler gets S3's URL-encoded event.
    # A strict gate (tolerance 0): a challenger must score at least the champion's score.
    lambda_env(bucket, promotion_tolerance=0)
    event = upload_event(bucket, AWKWARD_KEY, student_frame(11))
    assert event["Records"][0]["s3"]["object"]["key"] == "incoming/new+data%2B1+%C3%A9.csv"
    trained = invoke(event)
    v2 = trained["version"]
    assert (trained["status"], trained["promoted"]) == ("trained", True)
    assert store.resolve("champion") == v2
    assert serve.wait_for_version(v2) == v2
    # The handler drew v2's report in the bucket; the API serves it, v1 on the same holdout in it.
    report = serve.client.get("/model/report")
    assert report.status_code == 200
    assert f"Evaluation report: {v2}" in report.text
    assert f"champion {v1} (same holdout)" in report.text

    # An invalid CSV: the handler raises, nothing moves.
    with pytest.raises(DataValidationError):
        invoke(upload_event(bucket, "incoming/broken.csv", invalid_frame(12)))
    assert store.resolve("champion") == v2

    # A CSV that trains a worse model: its labels are v2's own answers, so v2 scores a perfect
    # 1.0 on any holdout of it and a forest retrained from it can at best tie. (Random labels
    # would not do: see test_model_trained_on_random_labels_never_replaces_the_champion.)
    frame = student_frame(13)
    answers = SklearnPredictor(store.load(v2)).predict_proba(records_from_frame(frame, load_schema()))
    frame[TARGET] = (answers >= 0.5).astype(int)
    worse = invoke(upload_event(bucket, "incoming/worse.csv", frame))
    assert worse["status"] == "trained"
    assert worse["promoted"] is False, worse["reason"]
    assert worse["metrics"]["roc_auc"] < worse["champion_score"] == 1.0
    assert store.resolve("champion") == v2
    assert serve.versions_during(4 * RELOAD_INTERVAL_S) == {v2}

    # A tampered artifact promoted behind the gate's back: the API refuses it and keeps v2.
    v3 = store.save(store.load(v2)).id
    original = store.load(v3).files[MODEL_FILE]
    make_client().put_object(Bucket=bucket, Key=f"models/versions/{v3}/{MODEL_FILE}", Body=original[::-1])
    store.promote(v3, reason="planted by the test")
    assert poll(serve.reload_failures, lambda failures: failures >= 1, DEADLINE_S, RELOAD_INTERVAL_S) >= 1
    assert serve.versions_during(4 * RELOAD_INTERVAL_S) == {v2}
    assert serve.client.get("/ready").json()["model_version"] == v2
    failures = [
        line
        for line in (json.loads(text) for text in serve.log.read_text().splitlines() if text.startswith("{"))
        if line.get("event") == "model_reload_failed"
    ]
    assert failures, "the API logged no model_reload_failed line"
    assert {line["version"] for line in failures} == {v3}
    assert all("sha256" in line["error"] and line["serving"] == v2 for line in failures)
