"""The API runs on the serving set alone (``ccml[serve]``, the api image): a real ``ccml serve``
whose interpreter cannot import any package of the training stack answers every route."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccml.core.components import build_model_store
from ccml.core.schema import load_schema
from ccml.core.settings import Settings

pytestmark = pytest.mark.integration

# ccml[train]'s packages and what they pull in: none of them is in the api image.
TRAINING_STACK = (
    "sklearn",
    "scipy",
    "pandas",
    "skl2onnx",
    "onnx",
    "skops",
    "joblib",
    "duckdb",
    "matplotlib",
    "pyspark",
    "awslambdaric",
)
# Runs ``ccml`` (arguments after -c's code) in an interpreter where importing any of those fails,
# as it would where they are not installed; every import attempted is also written to a file, so a
# guarded ``try: import`` that would change behaviour shows up too.
_BLOCKING_LAUNCHER = """
import importlib.abc, sys
blocked, attempts = {blocked!r}, open({attempts!r}, "a")
class TrainingStackAbsent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            attempts.write(name + "\\n"); attempts.flush()
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, TrainingStackAbsent())
from ccml.cli import main
main()
"""


def test_ccml_serve_answers_every_route_without_the_training_stack(
    tmp_path: Path, make_settings: Callable[..., Settings], models: Any, ccml_serve: Callable[..., Any]
) -> None:
    settings = make_settings(tmp_path / "home")
    version = models.publish(build_model_store(settings))
    attempts = tmp_path / "blocked-imports.txt"
    code = _BLOCKING_LAUNCHER.format(blocked=TRAINING_STACK, attempts=str(attempts))
    server = ccml_serve(settings.home, env={"CCML_PREDICTOR": "onnx"}, launcher=[sys.executable, "-c", code])
    example = load_schema().example_record()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            one = client.post("/predict", json=example)
            batch = client.post("/predict/batch", json={"instances": [example, example]})
            explained = client.post("/predict?explain=true&top=2", json=example)
            explained_batch = client.post("/predict/batch?explain=true", json={"instances": [example] * 10})
            bad = client.post("/predict", json={**example, "quiz_scores": "high"})
            model = client.get("/model")
            metrics = client.get("/metrics")
            docs = client.get("/docs")
            openapi = client.get("/openapi.json")
            reload = client.post("/admin/reload")
    finally:
        server.stop()

    assert one.status_code == 200, one.text
    assert one.json()["model_version"] == version
    assert [p["probability"] for p in batch.json()["predictions"]] == pytest.approx([one.json()["probability"]] * 2)
    assert explained.status_code == 200, explained.text
    assert len(explained.json()["explanation"]["factors"]) == 2
    assert explained.json()["explanation"]["score"] == pytest.approx(one.json()["probability"], abs=1e-6)
    assert explained_batch.status_code == 200, explained_batch.text
    assert {p["explanation"]["method"] for p in explained_batch.json()["predictions"]} == {"tree_path"}
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "quiz_scores"
    assert model.json()["version"] == version
    assert 'ccml_predictions_total{label="' in metrics.text
    assert docs.status_code == 200
    assert "/predict/batch" in openapi.json()["paths"]
    assert reload.json()["model_version"] == version
    # Nothing on the way even tried: serving needs none of it, not merely survives without it.
    assert not attempts.exists() or attempts.read_text() == "", attempts.read_text()


@pytest.mark.parametrize("command", [["train", "--data", "students.csv"], ["horizons", "--logs", "logs.csv"]])
def test_a_training_command_without_the_training_stack_names_the_install(tmp_path: Path, command: list[str]) -> None:
    code = _BLOCKING_LAUNCHER.format(blocked=TRAINING_STACK, attempts=str(tmp_path / "attempts.txt"))
    (tmp_path / "students.csv").write_text("a,b\n1,2\n")
    (tmp_path / "logs.csv").write_text("a,b\n1,2\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCML_")}
    done = subprocess.run(
        [sys.executable, "-c", code, *command],
        cwd=tmp_path,
        env={**env, "CCML_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1, done.stderr
    assert "is not installed: pip install 'ccml[train]'" in done.stderr
    assert "Traceback" not in done.stderr
