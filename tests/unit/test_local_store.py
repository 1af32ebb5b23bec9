from __future__ import annotations

import json
import stat
import threading
from importlib.metadata import version as installed_version
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from ccml.core.artifact import MANIFEST_FILE, MODEL_FILE
from ccml.core.contracts import VERSION_PATTERN
from ccml.core.errors import (
    ArtifactIntegrityError,
    ConcurrentUpdateError,
    ModelNotFoundError,
    ModelStoreError,
    ObjectExistsError,
)
from ccml.core.types import TrainingResult
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.storage.local import LocalModelStore
from tests.helpers import store_state, tree_digest


def _version_dir(store: LocalModelStore, version: str) -> Path:
    return store.root / "versions" / version


def _edit_manifest(store: LocalModelStore, version: str, **changes: object) -> None:
    path = _version_dir(store, version) / MANIFEST_FILE
    document = json.loads(path.read_bytes())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = document
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    path.write_text(json.dumps(document))


def _other_minor(text: str) -> str:
    major, minor, *_ = text.split(".")
    return f"{major}.{int(minor) + 1}.0"


# -- versions ------------------------------------------------------------------------------
def test_saved_version_loads_with_identical_bytes_and_predictions(
    store: LocalModelStore, training: TrainingResult
) -> None:
    saved = store.save(training.artifact)
    loaded = store.load(saved.id)
    assert loaded.version == saved.id
    assert loaded.files == training.artifact.files
    features = training.holdout_features
    np.testing.assert_array_equal(
        SklearnPredictor(loaded).predict_proba(features), SklearnPredictor(training.artifact).predict_proba(features)
    )


def test_version_ids_are_sortable_in_creation_order(store: LocalModelStore, training: TrainingResult) -> None:
    ids = [store.save(training.artifact).id for _ in range(3)]
    assert all(VERSION_PATTERN.match(v) for v in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert [v.id for v in store.versions()] == ids


def test_objects_are_write_once(store: LocalModelStore, training: TrainingResult) -> None:
    saved = store.save(training.artifact)
    key = f"versions/{saved.id}/{MODEL_FILE}"
    before = (store.root / key).read_bytes()
    with pytest.raises(ObjectExistsError):
        store._write_new(key, b"replacement")
    assert (store.root / key).read_bytes() == before


def test_save_takes_the_next_id_when_two_saves_share_a_microsecond(
    store: LocalModelStore, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = iter(["20250101T000000.000001Z", "20250101T000000.000001Z", "20250101T000000.000002Z"])
    monkeypatch.setattr(LocalModelStore, "new_version_id", staticmethod(lambda: next(ids)))
    first = store.save(training.artifact)
    second = store.save(training.artifact)
    assert (first.id, second.id) == ("20250101T000000.000001Z", "20250101T000000.000002Z")


def test_saved_files_are_readable_by_other_users(store: LocalModelStore, training: TrainingResult) -> None:
    saved = store.save(training.artifact)
    for path in _version_dir(store, saved.id).iterdir():
        assert path.stat().st_mode & stat.S_IROTH


def test_no_temporary_files_remain_after_save_and_promote(store: LocalModelStore, training: TrainingResult) -> None:
    saved = store.save(training.artifact)
    store.promote(saved.id)
    assert not list(store.root.rglob("*.tmp"))


def test_manifest_records_version_files_and_checksums(store: LocalModelStore, training: TrainingResult) -> None:
    saved = store.save(training.artifact)
    manifest = store.manifest(saved.id)
    assert manifest.version == saved.id
    assert manifest.files[MODEL_FILE].size == len(training.artifact.files[MODEL_FILE])
    assert manifest.libraries["scikit-learn"] == installed_version("scikit-learn")


# -- aliases, rollback, history ------------------------------------------------------------
def test_promote_points_the_alias_and_lists_it_on_the_version(store: LocalModelStore, training: TrainingResult) -> None:
    first, second = store.save(training.artifact), store.save(training.artifact)
    store.promote(first.id)
    store.promote(second.id, "staging")
    assert store.resolve() == first.id
    assert store.resolve("staging") == second.id
    assert {v.id: v.aliases for v in store.versions()} == {first.id: ("champion",), second.id: ("staging",)}


def test_rollback_restores_the_previous_champion(store: LocalModelStore, training: TrainingResult) -> None:
    first, second, third = (store.save(training.artifact) for _ in range(3))
    for saved in (first, second, third):
        store.promote(saved.id)
    assert store.rollback().version == second.id
    assert store.resolve() == second.id
    assert store.load().version == second.id
    assert store.rollback().version == first.id
    with pytest.raises(ModelStoreError, match="no earlier version"):
        store.rollback()
    assert store.resolve() == first.id


def test_rollback_without_alias_raises(store: LocalModelStore) -> None:
    with pytest.raises(ModelStoreError, match="no earlier version"):
        store.rollback()


def test_history_records_forced_promotion_with_previous_champion(
    store: LocalModelStore, training: TrainingResult
) -> None:
    first, second = store.save(training.artifact), store.save(training.artifact)
    store.promote(second.id, reason="gate passed")
    store.promote(first.id, reason="by hand", forced=True)
    store.rollback(reason="oops")
    events = store.history()
    assert [e.action for e in events] == ["promote", "force_promote", "rollback"]
    forced = events[1]
    assert (forced.version, forced.previous, forced.reason) == (first.id, second.id, "by hand")
    assert (events[2].version, events[2].previous) == (second.id, first.id)
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_alias_swap_with_a_stale_token_is_refused(store: LocalModelStore, training: TrainingResult) -> None:
    first, second = store.save(training.artifact), store.save(training.artifact)
    store.promote(first.id)
    stale = store.alias_token()
    store.promote(second.id)
    assert store.alias_token() != stale
    with pytest.raises(ConcurrentUpdateError):
        store._swap("aliases/champion.json", b"{}", stale)
    assert store.resolve() == second.id


def test_alias_file_is_always_complete_json(store: LocalModelStore, training: TrainingResult) -> None:
    versions = [store.save(training.artifact).id for _ in range(2)]
    path = store.root / "aliases" / "champion.json"
    for version in versions * 3:
        store.promote(version)
        assert json.loads(path.read_bytes())["version"] == version


def test_concurrent_promotions_all_land_and_are_all_recorded(store: LocalModelStore, training: TrainingResult) -> None:
    versions = [store.save(training.artifact).id for _ in range(4)]
    errors: list[BaseException] = []

    def promote(version: str) -> None:
        try:
            store.promote(version, reason=version)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    record = store.alias()
    assert record is not None
    assert record.version in versions
    assert {record.version, *record.previous} == set(versions)
    assert len(store.history()) == len(versions)


def test_promoting_a_missing_version_raises_and_keeps_the_alias(
    saved_store: LocalModelStore,
) -> None:
    before = store_state(saved_store)
    with pytest.raises(ModelNotFoundError):
        saved_store.promote("20990101T000000.000000Z")
    assert store_state(saved_store) == before


@pytest.mark.parametrize("alias", ["Champion", "has space", "../escape", ""])
def test_invalid_alias_names_are_refused(saved_store: LocalModelStore, alias: str) -> None:
    with pytest.raises(ModelStoreError, match="invalid alias"):
        saved_store.promote(saved_store.resolve(), alias)


def test_load_unknown_alias_raises_model_not_found(store: LocalModelStore) -> None:
    with pytest.raises(ModelNotFoundError, match="alias 'champion' is not set"):
        store.load()


@pytest.mark.parametrize("ref", ["20990101T000000.000000Z", "not-a-version!"])
def test_load_unknown_version_raises_model_not_found(saved_store: LocalModelStore, ref: str) -> None:
    with pytest.raises((ModelNotFoundError, ModelStoreError)):
        saved_store.load(ref)


def test_history_write_failure_does_not_undo_the_promotion(
    store: LocalModelStore, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = store.save(training.artifact)
    original = LocalModelStore._write_new

    def no_history(self: LocalModelStore, key: str, data: bytes) -> None:
        if key.startswith("history/"):
            raise OSError("read-only history")
        original(self, key, data)

    monkeypatch.setattr(LocalModelStore, "_write_new", no_history)
    with capture_logs() as logs:
        store.promote(saved.id)
    assert store.resolve() == saved.id
    assert any(entry["event"] == "history_write_failed" for entry in logs)


# -- integrity -----------------------------------------------------------------------------
def test_tampered_artifact_raises_integrity_error(saved_store: LocalModelStore) -> None:
    path = _version_dir(saved_store, saved_store.resolve()) / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="does not match its sha256"):
        saved_store.load()


def test_missing_artifact_file_raises_model_not_found(saved_store: LocalModelStore) -> None:
    (_version_dir(saved_store, saved_store.resolve()) / MODEL_FILE).unlink()
    with pytest.raises(ModelNotFoundError, match="is missing"):
        saved_store.load()


def test_different_sklearn_minor_version_raises_integrity_error(saved_store: LocalModelStore) -> None:
    made_with = _other_minor(installed_version("scikit-learn"))
    _edit_manifest(saved_store, saved_store.resolve(), libraries__scikit_learn=made_with)
    _rename_library_key(saved_store)
    with pytest.raises(ArtifactIntegrityError, match=f"scikit-learn {made_with}"):
        saved_store.load()


def _rename_library_key(store: LocalModelStore) -> None:
    # "scikit-learn" cannot be a Python keyword argument: move the edited value under it.
    path = _version_dir(store, store.resolve()) / MANIFEST_FILE
    document = json.loads(path.read_bytes())
    document["libraries"]["scikit-learn"] = document["libraries"].pop("scikit_learn")
    path.write_text(json.dumps(document))


def test_same_sklearn_minor_with_other_patch_loads(saved_store: LocalModelStore) -> None:
    major, minor, *_ = installed_version("scikit-learn").split(".")
    _edit_manifest(saved_store, saved_store.resolve(), libraries__scikit_learn=f"{major}.{minor}.999")
    _rename_library_key(saved_store)
    assert saved_store.load().version == saved_store.resolve()


def test_unreadable_manifest_raises_model_store_error(saved_store: LocalModelStore) -> None:
    (_version_dir(saved_store, saved_store.resolve()) / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ModelStoreError, match="unreadable"):
        saved_store.load()


def test_unreadable_alias_raises_model_store_error(saved_store: LocalModelStore) -> None:
    (saved_store.root / "aliases" / "champion.json").write_text("[]")
    with pytest.raises(ModelStoreError, match="alias 'champion' is unreadable"):
        saved_store.resolve()


def test_signed_artifact_loads_with_the_same_key(tmp_path: Path, training: TrainingResult) -> None:
    store = LocalModelStore(tmp_path / "signed", signing_key=b"right key")
    saved = store.save(training.artifact)
    assert store.manifest(saved.id).signature
    assert store.load(saved.id).version == saved.id


def test_signed_artifact_is_refused_with_a_wrong_key(tmp_path: Path, training: TrainingResult) -> None:
    saved = LocalModelStore(tmp_path / "signed", signing_key=b"right key").save(training.artifact)
    with pytest.raises(ArtifactIntegrityError, match="invalid signature"):
        LocalModelStore(tmp_path / "signed", signing_key=b"wrong key").load(saved.id)


def test_unsigned_artifact_is_refused_when_a_key_is_configured(tmp_path: Path, training: TrainingResult) -> None:
    saved = LocalModelStore(tmp_path / "plain").save(training.artifact)
    with pytest.raises(ArtifactIntegrityError, match="not signed"):
        LocalModelStore(tmp_path / "plain", signing_key=b"key").load(saved.id)


def test_signed_manifest_edit_is_detected(tmp_path: Path, training: TrainingResult) -> None:
    store = LocalModelStore(tmp_path / "signed", signing_key=b"key")
    saved = store.save(training.artifact)
    _edit_manifest(store, saved.id, trainer="something_else")
    with pytest.raises(ArtifactIntegrityError, match="invalid signature"):
        store.load(saved.id)


def test_artifact_and_manifest_replaced_together_are_refused_when_signed(
    tmp_path: Path, training: TrainingResult
) -> None:
    store = LocalModelStore(tmp_path / "signed", signing_key=b"key")
    genuine = store.save(training.artifact)
    forged = LocalModelStore(tmp_path / "attacker").save(training.artifact)
    for name in (MODEL_FILE, MANIFEST_FILE):
        source = _version_dir(LocalModelStore(tmp_path / "attacker"), forged.id) / name
        (_version_dir(store, genuine.id) / name).write_bytes(source.read_bytes())
    with pytest.raises(ArtifactIntegrityError):
        store.load(genuine.id)


# -- crashes -------------------------------------------------------------------------------
def test_crash_while_writing_the_manifest_leaves_the_old_champion(
    saved_store: LocalModelStore, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store_state(saved_store)
    champion = saved_store.resolve()
    original = LocalModelStore._write_new

    def crash_on_manifest(self: LocalModelStore, key: str, data: bytes) -> None:
        if key.endswith(MANIFEST_FILE):
            raise OSError("power cut")
        original(self, key, data)

    monkeypatch.setattr(LocalModelStore, "_write_new", crash_on_manifest)
    with pytest.raises(ModelStoreError, match="power cut"):
        saved_store.save(training.artifact)
    monkeypatch.undo()
    assert store_state(saved_store) == before
    assert saved_store.load().version == champion
    assert saved_store.save(training.artifact).id not in before[0]


def test_crash_while_writing_the_model_file_leaves_no_version(
    saved_store: LocalModelStore, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store_state(saved_store)

    def crash(self: LocalModelStore, path: Path, data: bytes) -> Path:
        raise OSError("killed mid-write")

    monkeypatch.setattr(LocalModelStore, "_temporary", crash)
    with pytest.raises(ModelStoreError, match="killed mid-write"):
        saved_store.save(training.artifact)
    monkeypatch.undo()
    assert store_state(saved_store) == before
    assert saved_store.load().version == saved_store.resolve()


def test_crash_while_moving_the_alias_keeps_the_old_one(
    saved_store: LocalModelStore, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion = saved_store.resolve()
    challenger = saved_store.save(training.artifact)
    files = tree_digest(saved_store.root / "aliases")

    def crash(*args: object) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr("ccml.storage.local.os.replace", crash)
    with pytest.raises(ModelStoreError, match="rename failed"):
        saved_store.promote(challenger.id)
    monkeypatch.undo()
    assert saved_store.resolve() == champion
    assert tree_digest(saved_store.root / "aliases") == files


def test_empty_store_lists_nothing(store: LocalModelStore) -> None:
    assert store.versions() == []
    assert store.aliases() == {}
    assert store.history() == []
    assert store.alias() is None


def test_failed_write_leaves_no_temporary_file(
    saved_store: LocalModelStore, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr("ccml.storage.local.os.fsync", no_space)
    with pytest.raises(ModelStoreError, match="no space left"):
        saved_store.save(training.artifact)
    monkeypatch.undo()
    assert not list(saved_store.root.rglob("*.tmp"))
    assert saved_store.load().version == saved_store.resolve()
