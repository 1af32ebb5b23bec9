"""Hostile versions in the local and the S3 store, each promoted to champion: loading them for
any serving backend, hot reload, and retraining refuse them, never hang, never run their code,
and the good model keeps serving (or is replaced by a freshly trained one)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ccml.core.components import build_predictor
from ccml.core.contracts import ModelStore
from ccml.core.errors import CcmlError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult
from ccml.models.serving.watcher import ChampionWatcher
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.local import LocalDataSource, LocalModelStore
from tests.helpers import FAST_PARAMS
from tests.reliability.figures import record
from tests.reliability.hostile import KINDS, LOCAL_ONLY, PORTABLE, plant, point_champion

T = TypeVar("T")
# Every serving configuration a deployment can choose.
BACKENDS: dict[str, dict[str, Any]] = {
    "onnx": {"predictor": "onnx"},
    "sklearn": {"predictor": "sklearn"},
    "onnx+fallback": {"predictor": "onnx", "onnx_fallback": True},
}
CASES = [("local", kind) for kind in KINDS] + [("s3", kind) for kind in PORTABLE]
_outcomes: dict[str, int] = {"cases": 0, "failures": 0}


def within(seconds: float, action: Callable[[], T]) -> T:
    """Run ``action`` on a thread; fail the test if it has not finished in ``seconds`` (a hang)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"still running after {seconds} s: a hostile file made the reader hang")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Any:
    yield
    record("hostile_artifacts", "in-process", cases=_outcomes["cases"], failures=_outcomes["failures"])


def _count(passed: bool) -> None:
    _outcomes["cases"] += 1
    _outcomes["failures"] += 0 if passed else 1


@pytest.mark.parametrize(("backend", "kind"), CASES)
def test_hostile_champion_is_refused_by_every_consumer_and_runs_nothing(
    backend: str,
    kind: str,
    stores: Callable[[str], ModelStore],
    training: TrainingResult,
    schema: FeatureSchema,
    sample_csv: Path,
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    store = stores(backend)
    good = store.save(training.artifact).id
    store.promote(good, reason="the good model")
    hostile = plant(store, training.artifact, kind, marker)
    passed = False
    try:
        # Hot reload: the server holds the good model, then the alias moves to the hostile one.
        factory_settings = Settings(home=tmp_path / "unused")
        watcher = ChampionWatcher(store, lambda a: build_predictor(factory_settings, a), schema)
        assert within(30, watcher.check).version == good
        point_champion(store, hostile)
        result = within(30, watcher.check)
        assert (result.changed, result.version) == (False, good)
        assert result.error
        assert within(30, lambda: watcher.check(force=True)).version == good  # forced retries refuse too

        # Every serving backend refuses it with ccml's own error, and answers quickly.
        for name, options in BACKENDS.items():
            settings = Settings(home=tmp_path / "unused", **options)

            def load_and_predict(settings: Settings = settings) -> None:
                build_predictor(settings, store.load("champion")).predict_proba([schema.example_record()])

            with pytest.raises(CcmlError):
                within(30, load_and_predict)
            assert not marker.exists(), f"{kind} ran code with the {name} backend"

        # Retraining scores the champion (the promotion gate): it must not run it, nor stop.
        settings = Settings(home=tmp_path / "unused", min_rows=50, trainer_params=FAST_PARAMS["random_forest"])
        workflow = RetrainWorkflow.from_settings(settings, store, RandomForestTrainer(FAST_PARAMS["random_forest"]))
        outcome = within(120, lambda: workflow.run(LocalDataSource(sample_csv)))
        assert outcome.promoted, outcome.reason
        assert ("champion" in outcome.reason and hostile in outcome.reason) or "unusable" in outcome.reason
        assert store.resolve("champion") == outcome.version
        assert not marker.exists(), f"{kind} ran code during a retrain"
        passed = True
    finally:
        _count(passed)


def test_every_kind_is_exercised_on_some_backend() -> None:
    # The parametrization above must cover each hostile kind, the filesystem-only ones locally.
    assert {kind for _, kind in CASES} == set(KINDS)
    assert all(("local", kind) in CASES for kind in LOCAL_ONLY)


def test_the_payloads_are_real_they_run_when_trusted(training: TrainingResult, tmp_path: Path) -> None:
    # Without this, "the marker never appears" could mean the payloads were duds.
    import skops.io as sio

    opted_in = LocalModelStore(tmp_path / "store", allow_unsigned_pickle=True)
    pickle_marker, skops_marker = tmp_path / "pickle-ran", tmp_path / "skops-ran"
    version = plant(opted_in, training.artifact, "pickle_payload", pickle_marker)
    with pytest.raises(CcmlError):  # the payload runs, then the result is no pipeline
        opted_in.load(version).pipeline  # noqa: B018
    assert pickle_marker.exists()
    data = opted_in.load(plant(opted_in, training.artifact, "untrusted_skops", skops_marker)).files["model.skops"]
    sio.loads(data, trusted=sio.get_untrusted_types(data=data))  # what trusting every type would do
    assert skops_marker.exists()
