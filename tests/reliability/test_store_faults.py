"""Faults of the model stores themselves, local and S3 (a real moto server): a save SIGKILLed at each
step, a full disk at each write, a damaged manifest (of the champion or another version), an alias
to a version that does not exist, and racing promotions. After each (``assert_survived``): the store
reads, the champion is the old or the new version, nothing committed is lost, what an interrupted
save left is invisible until garbage collection removes it (and only it), the API's watcher keeps
serving, and a retrain still works.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from ccml.core.artifact import MANIFEST_FILE
from ccml.core.components import build_predictor
from ccml.core.contracts import ModelStore
from ccml.core.errors import ArtifactIntegrityError, ModelNotFoundError, ModelStoreError
from ccml.core.model_files import EXPLAINER_FILE, ONNX_FILE, SKOPS_FILE
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult
from ccml.models.serving.watcher import ChampionWatcher
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.local import LocalDataSource, LocalModelStore
from tests.helpers import FAST_PARAMS
from tests.reliability.fault_helpers import (
    assert_collected,
    assert_survived,
    committed,
    damaged_manifest,
    enospc_at_fsync,
    fill,
    left_by_one_save,
    like_s3,
    litter,
    one_line,
    overwrite,
    pages,
    race,
    scenario,
    seed,
    tmpfs,
)
from tests.reliability.figures import scale
from tests.reliability.hostile import point_champion
from tests.reliability.save_worker import KILL_POINTS, killed_save

FOREST: dict[str, Any] = FAST_PARAMS["random_forest"]


@pytest.fixture
def retrain(tmp_path: Path, sample_csv: Path) -> Callable[[ModelStore], Any]:
    """A retrain on the sample whose gate promotes every challenger (so each run reaches the alias)."""
    settings = Settings(home=tmp_path / "home", min_rows=50, trainer_params=FOREST, promotion_tolerance=1.0)
    return lambda store: RetrainWorkflow.from_settings(settings, store, RandomForestTrainer(FOREST)).run(
        LocalDataSource(sample_csv)
    )


@pytest.fixture
def watcher_for(tmp_path: Path, schema: FeatureSchema) -> Callable[[ModelStore], ChampionWatcher]:
    """The API's hot-reload watcher over a store, with the default (ONNX) serving backend."""
    settings = Settings(home=tmp_path / "home")
    return lambda store: ChampionWatcher(store, lambda artifact: build_predictor(settings, artifact), schema)


# -- SIGKILL at each step of a local save ------------------------------------------------
# step -> (files left without a manifest, temporary files left, the new version commits, it is champion)
KILLS: dict[str, tuple[tuple[str, ...], int, bool, bool]] = {
    "before the model file": ((), 0, False, False),
    "model file not yet linked": ((), 1, False, False),
    "before the ONNX file": (("model.skops",), 0, False, False),
    "before the manifest": (("model.skops", "model.onnx", "explainer.npz"), 0, False, False),
    "before the alias move": ((), 0, True, False),
    "alias not yet renamed": ((), 1, True, False),
    "before the history line": ((), 0, True, True),
}


@pytest.mark.parametrize("step", KILL_POINTS)
def test_sigkill_mid_save_leaves_only_invisible_leftovers_that_gc_removes(
    step: str, tmp_path: Path, training: TrainingResult
) -> None:
    orphans, temporaries, commits, promoted = KILLS[step]
    with scenario(f"sigkill {step}"):
        seed_store = LocalModelStore(tmp_path / "seed")
        source = seed_store.save(training.artifact).id
        store = LocalModelStore(tmp_path / "store")
        old = seed(store, training)

        died_at = killed_save(seed_store.root, source, store.root, step)

        assert died_at != "finished", f"the worker was never killed at {step}"
        new = sorted(committed(store) - {old})
        assert len(new) == commits
        temporary = litter(store)
        assert len(temporary) == temporaries
        assert all(path == died_at for path in temporary)
        assert_survived(store, before=[old, *new], champion_in={new[0] if promoted else old})
        assert_collected(store, left_by_one_save(store, orphans) | temporary)
        latest = seed(store, training)  # the store keeps working after the crash
        assert store.rollback().version == (new[0] if promoted else old)
        assert_survived(store, before=[old, *new, latest], champion_in={new[0] if promoted else old})


# -- a full disk -------------------------------------------------------------------------
TMPFS_STEPS = ("model file", "ONNX file", "manifest", "alias")


@pytest.mark.parametrize("step", TMPFS_STEPS)
def test_full_tmpfs_fails_with_one_line_and_keeps_the_champion(
    step: str, tmp_path: Path, training: TrainingResult
) -> None:
    with scenario(f"full disk (tmpfs) at the {step}"), tmpfs(tmp_path / "disk", "2m") as disk:
        store = LocalModelStore(disk / "store")
        old = seed(store, training)
        skops, onnx, explainer = (
            len(training.artifact.files[name]) for name in (SKOPS_FILE, ONNX_FILE, EXPLAINER_FILE)
        )  # in save's order
        manifest = len(training.artifact.manifest.model_copy(update={"version": store.new_version_id()}).to_json())
        written_before = {"model file": (), "ONNX file": (skops,), "manifest": (skops, onnx, explainer)}
        filler = fill(disk, pages(disk, *written_before.get(step, (skops, onnx, explainer, manifest))))

        with pytest.raises(ModelStoreError) as raised:
            store.promote(store.save(training.artifact).id, reason="on a full disk")

        assert "No space left on device" in one_line(raised.value)
        new = sorted(committed(store) - {old})
        assert len(new) == (1 if step == "alias" else 0)  # only a failed alias move follows a commit
        assert_survived(store, before=[old, *new], champion_in={old})
        filler.unlink()
        every = ("model.skops", "model.onnx", "explainer.npz")
        orphans = {"model file": (), "ONNX file": ("model.skops",), "manifest": every}
        assert_collected(store, left_by_one_save(store, orphans.get(step, ())))
        latest = seed(store, training)  # with room again, the store saves and promotes
        assert_survived(store, before=[old, *new, latest], champion_in={latest})


# file whose flush fails -> (temporary file name pattern, does the new version commit, is it champion)
FSYNC_STEPS: dict[str, tuple[str, bool, bool]] = {
    "model file": (r"^\.model\.skops\.", False, False),
    "manifest": (r"^\.manifest\.json\.", False, False),
    "alias": (r"^\.champion\.json\.", True, False),
    "history line": (r"-promote-champion\.json\.", True, True),
}


@pytest.mark.parametrize("step", FSYNC_STEPS)
def test_enospc_on_flush_fails_cleanly_and_keeps_the_champion(
    step: str, tmp_path: Path, training: TrainingResult
) -> None:
    pattern, commits, promoted = FSYNC_STEPS[step]
    with scenario(f"full disk (ENOSPC on flush) at the {step}"):
        store = LocalModelStore(tmp_path / "store")
        old = seed(store, training)
        with pytest.MonkeyPatch.context() as faults, capture_logs() as logs:
            hits = enospc_at_fsync(faults, pattern)
            if promoted:  # the alias moved: a lost history line is logged, never a failure
                store.promote(store.save(training.artifact).id, reason="on a full disk")
            else:
                with pytest.raises(ModelStoreError) as raised:
                    store.promote(store.save(training.artifact).id, reason="on a full disk")
                assert "No space left on device" in one_line(raised.value)
        warnings = [entry["event"] for entry in logs if entry["log_level"] == "warning"]
        assert warnings == (["history_write_failed"] if promoted else [])
        assert hits, f"the {step} was never flushed"
        new = sorted(committed(store) - {old})
        assert len(new) == commits
        assert litter(store) == set()  # a failed write removes its temporary file
        assert_survived(store, before=[old, *new], champion_in={new[0] if promoted else old})
        every = ("model.skops", "model.onnx", "explainer.npz")
        assert_collected(store, left_by_one_save(store, every if step == "manifest" else ()))


# -- damaged metadata --------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated JSON", "wrong types"])
@pytest.mark.parametrize("target", ["another version", "the champion"])
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_damaged_manifest_is_refused_clearly_the_watcher_keeps_serving_and_a_retrain_works(
    backend: str,
    target: str,
    damage: str,
    stores: Callable[[str], ModelStore],
    training: TrainingResult,
    retrain: Callable[[ModelStore], Any],
    watcher_for: Callable[[ModelStore], ChampionWatcher],
) -> None:
    with scenario(f"{backend} manifest of {target}: {damage}"):
        store = stores(backend)
        old = seed(store, training)
        victim = store.save(training.artifact).id
        if target == "the champion":
            store.promote(victim, reason="the version to damage")
        watcher = watcher_for(store)
        serving = watcher.check().version
        key = f"versions/{victim}/{MANIFEST_FILE}"
        original = store._read(key, 1 << 20)
        assert original is not None
        overwrite(store, key, damaged_manifest(original, damage))

        champion = victim if target == "the champion" else old
        assert_survived(store, before=[old, victim], champion_in={champion}, damaged={victim})
        assert watcher.check(force=True).version == serving  # the model in memory keeps serving
        if target == "the champion":
            with pytest.raises(ArtifactIntegrityError, match="unreadable"):
                store.load("champion")
            fresh = watcher_for(store).check()  # a restarted API refuses it and says why
            assert fresh.version is None
            assert victim in str(fresh.error)

        outcome = retrain(store)
        assert outcome.promoted, outcome.reason
        assert watcher.check().version == outcome.version
        assert_survived(store, before=[old, victim, outcome.version], champion_in={outcome.version}, damaged={victim})


MISSING = [("local", "a deleted version"), ("s3", "a deleted version"), ("local", "not a version id")]


@pytest.mark.parametrize(("backend", "target"), MISSING)
def test_alias_to_a_missing_version_raises_not_found_and_a_retrain_repairs_it(
    backend: str,
    target: str,
    stores: Callable[[str], ModelStore],
    training: TrainingResult,
    retrain: Callable[[ModelStore], Any],
    watcher_for: Callable[[ModelStore], ChampionWatcher],
) -> None:
    with scenario(f"{backend} alias to {target}"):
        store = stores(backend)
        old = seed(store, training)
        watcher = watcher_for(store)
        assert watcher.check().version == old
        missing = store.new_version_id() if target == "a deleted version" else "../../etc/passwd"
        point_champion(store, missing)  # the alias file written by hand

        with pytest.raises(ModelNotFoundError):
            store.load("champion")
        reload = watcher.check()
        assert (reload.changed, reload.version) == (False, old)
        assert reload.error
        assert_survived(store, before=[old], champion_in={missing})

        outcome = retrain(store)
        assert outcome.promoted, outcome.reason
        assert "no champion" in outcome.reason
        assert watcher.check().version == outcome.version
        assert_survived(store, before=[old, outcome.version], champion_in={outcome.version})


# -- races -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_racing_saves_and_promotions_end_at_one_of_them_with_a_full_history_and_rollback(
    backend: str, stores: Callable[[str], ModelStore], training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    racers = scale(4, 8)
    with scenario(f"{backend} {racers} concurrent promotions"):
        like_s3(monkeypatch)
        store = stores(backend)
        old = seed(store, training)

        mine = race(racers, lambda: seed(store, training))

        assert len(set(mine)) == racers, "two saves got the same version"
        final = store.resolve("champion")
        assert final in mine
        moves = {event.previous: event.version for event in store.history() if event.version in mine}
        chain = [old]
        while chain[-1] in moves:  # each move replaced the one before it: none was overwritten unseen
            chain.append(moves[chain[-1]])
        assert sorted(chain[1:]) == sorted(mine)
        assert chain[-1] == final
        assert store.alias("champion").previous == tuple(chain[:-1])  # type: ignore[union-attr]
        assert_survived(store, before=[old, *mine], champion_in={final})
        for earlier in reversed(chain[:-1]):
            assert store.rollback(reason="undo a racer").version == earlier
        assert_survived(store, before=[old, *mine], champion_in={old})
