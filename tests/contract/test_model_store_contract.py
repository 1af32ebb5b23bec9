"""What every ``ModelStore`` backend guarantees, whatever it stores its objects in."""

from __future__ import annotations

import json
from importlib.metadata import version as installed_version

import numpy as np
import pytest

from ccml.core.artifact import MANIFEST_FILE, MODEL_FILE
from ccml.core.contracts import CHAMPION, VERSION_PATTERN, ModelStore
from ccml.core.errors import (
    ArtifactIntegrityError,
    ConcurrentUpdateError,
    ConfigError,
    ModelNotFoundError,
    ModelStoreError,
    ObjectExistsError,
)
from ccml.core.registry import MODEL_STORES
from ccml.core.types import TrainingResult
from ccml.models.serving.sklearn import SklearnPredictor
from tests.contract.backends import MODEL_STORE_BACKENDS, StoreOpener
from tests.helpers import store_state


def _overwrite(store: ModelStore, key: str, data: bytes) -> None:
    """Replace an object behind the store's back (what tampering or corruption looks like)."""
    store._swap(key, data, store._token(key))


def _manifest_key(version: str) -> str:
    return f"versions/{version}/{MANIFEST_FILE}"


def test_every_importable_registered_store_has_a_contract_backend() -> None:
    runnable = []
    for name in MODEL_STORES.names():
        try:
            MODEL_STORES.get(name)
        except ConfigError:  # registered for later, not importable here (e.g. s3 before its issue)
            continue
        runnable.append(name)
    assert set(runnable) <= set(MODEL_STORE_BACKENDS), "add the backend to tests/contract/backends.py"
    assert set(MODEL_STORE_BACKENDS) <= set(MODEL_STORES.names())


def test_new_store_is_empty(model_store: ModelStore) -> None:
    assert model_store.versions() == []
    assert model_store.aliases() == {}
    assert model_store.history() == []
    with pytest.raises(ModelNotFoundError):
        model_store.load()


def test_save_then_load_round_trips_bytes_and_predictions(model_store: ModelStore, training: TrainingResult) -> None:
    saved = model_store.save(training.artifact)
    assert VERSION_PATTERN.match(saved.id)
    assert saved.manifest.version == saved.id
    loaded = model_store.load(saved.id)
    assert loaded.files == training.artifact.files
    assert loaded.manifest == model_store.manifest(saved.id)
    np.testing.assert_array_equal(
        SklearnPredictor(loaded).predict_proba(training.holdout_features),
        SklearnPredictor(training.artifact).predict_proba(training.holdout_features),
    )


def test_versions_are_distinct_sorted_and_listed_oldest_first(
    model_store: ModelStore, training: TrainingResult
) -> None:
    ids = [model_store.save(training.artifact).id for _ in range(3)]
    assert ids == sorted(set(ids))
    assert [v.id for v in model_store.versions()] == ids


def test_objects_are_write_once(model_store: ModelStore, training: TrainingResult) -> None:
    saved = model_store.save(training.artifact)
    with pytest.raises(ObjectExistsError):
        model_store._write_new(f"versions/{saved.id}/{MODEL_FILE}", b"other bytes")
    assert model_store.load(saved.id).files == training.artifact.files


def test_version_without_manifest_is_invisible(model_store: ModelStore, training: TrainingResult) -> None:
    model_store._write_new(f"versions/20200101T000000.000000Z/{MODEL_FILE}", b"orphan")
    assert model_store.versions() == []
    saved = model_store.save(training.artifact)
    assert [v.id for v in model_store.versions()] == [saved.id]


def test_promote_resolve_and_load_by_alias(model_store: ModelStore, training: TrainingResult) -> None:
    saved = model_store.save(training.artifact)
    record = model_store.promote(saved.id, reason="first")
    assert record.version == saved.id
    assert model_store.resolve() == saved.id
    assert model_store.resolve(saved.id) == saved.id
    assert model_store.load(CHAMPION).version == saved.id
    assert model_store.versions()[0].aliases == (CHAMPION,)


def test_rollback_restores_the_previous_champion(model_store: ModelStore, training: TrainingResult) -> None:
    first, second = model_store.save(training.artifact), model_store.save(training.artifact)
    model_store.promote(first.id)
    model_store.promote(second.id)
    assert model_store.rollback().version == first.id
    assert model_store.resolve() == first.id
    with pytest.raises(ModelStoreError):
        model_store.rollback()


def test_history_records_every_alias_move(model_store: ModelStore, training: TrainingResult) -> None:
    first, second = model_store.save(training.artifact), model_store.save(training.artifact)
    model_store.promote(first.id, reason="gate")
    model_store.promote(second.id, reason="human", forced=True)
    model_store.rollback()
    events = model_store.history()
    assert [(e.action, e.version, e.previous) for e in events] == [
        ("promote", first.id, None),
        ("force_promote", second.id, first.id),
        ("rollback", first.id, second.id),
    ]
    assert events[1].reason == "human"


def test_alias_token_changes_when_the_alias_moves(model_store: ModelStore, training: TrainingResult) -> None:
    assert model_store.alias_token() is None
    first, second = model_store.save(training.artifact), model_store.save(training.artifact)
    model_store.promote(first.id)
    token = model_store.alias_token()
    assert token is not None
    assert model_store.alias_token() == token
    model_store.promote(second.id)
    assert model_store.alias_token() != token


def test_alias_swap_refuses_a_stale_token(model_store: ModelStore, training: TrainingResult) -> None:
    first, second = model_store.save(training.artifact), model_store.save(training.artifact)
    model_store.promote(first.id)
    stale = model_store.alias_token()
    model_store.promote(second.id)
    with pytest.raises(ConcurrentUpdateError):
        model_store._swap("aliases/champion.json", b"{}", stale)
    with pytest.raises(ConcurrentUpdateError):
        model_store._swap("aliases/champion.json", b"{}", None)  # None means "must not exist yet"
    assert model_store.resolve() == second.id


def test_unknown_refs_raise_model_not_found(model_store: ModelStore, training: TrainingResult) -> None:
    model_store.promote(model_store.save(training.artifact).id)
    for ref in ("20990101T000000.000000Z", "staging"):
        with pytest.raises(ModelNotFoundError):
            model_store.load(ref)
    with pytest.raises(ModelNotFoundError):
        model_store.promote("20990101T000000.000000Z")


def test_failed_manifest_write_leaves_the_store_as_it_was(
    model_store: ModelStore, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_store.promote(model_store.save(training.artifact).id)
    before = store_state(model_store)
    original = model_store._write_new

    def crash_on_manifest(key: str, data: bytes) -> None:
        if key.endswith(MANIFEST_FILE):
            raise OSError("crash")
        original(key, data)

    monkeypatch.setattr(model_store, "_write_new", crash_on_manifest)
    with pytest.raises(ModelStoreError):
        model_store.save(training.artifact)
    monkeypatch.undo()
    assert store_state(model_store) == before
    assert model_store.load().version == before[1][CHAMPION]


def test_tampered_artifact_is_refused(model_store: ModelStore, training: TrainingResult) -> None:
    saved = model_store.save(training.artifact)
    _overwrite(model_store, f"versions/{saved.id}/{MODEL_FILE}", b"not the model")
    with pytest.raises(ArtifactIntegrityError):
        model_store.load(saved.id)


def test_artifact_from_another_sklearn_minor_is_refused(model_store: ModelStore, training: TrainingResult) -> None:
    saved = model_store.save(training.artifact)
    manifest = json.loads(model_store._read(_manifest_key(saved.id), 1 << 20) or b"{}")
    major, minor, *_ = installed_version("scikit-learn").split(".")
    manifest["libraries"]["scikit-learn"] = f"{major}.{int(minor) + 1}.0"
    _overwrite(model_store, _manifest_key(saved.id), json.dumps(manifest).encode())
    with pytest.raises(ArtifactIntegrityError, match="scikit-learn"):
        model_store.load(saved.id)


def test_signing_key_is_checked_on_load(open_store: StoreOpener, training: TrainingResult) -> None:
    signed = open_store(b"right").save(training.artifact)
    unsigned = open_store().save(training.artifact)
    assert open_store(b"right").load(signed.id).version == signed.id
    with pytest.raises(ArtifactIntegrityError, match="invalid signature"):
        open_store(b"wrong").load(signed.id)
    with pytest.raises(ArtifactIntegrityError, match="not signed"):
        open_store(b"right").load(unsigned.id)


def test_describe_names_the_backend_and_location(model_store: ModelStore) -> None:
    description = model_store.describe()
    assert description["backend"]
    assert description["location"]
    assert all(isinstance(value, str) for value in description.values())


def test_describe_never_contains_the_signing_key(open_store: StoreOpener) -> None:
    assert "very-secret-key" not in json.dumps(open_store(b"very-secret-key").describe())
