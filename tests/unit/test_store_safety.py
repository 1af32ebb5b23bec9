"""What a store will and will not read: skops instead of pickles, old pickles only when
authenticated, the signature before any file, bounded reads, and garbage from killed saves."""

from __future__ import annotations

import io
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import pytest

from ccml.core.artifact import MANIFEST_FILE, MODEL_FILE, ArtifactFile, ModelArtifact, sha256_hex
from ccml.core.contracts import VERSION_FORMAT
from ccml.core.errors import ArtifactIntegrityError, ConfigError
from ccml.core.model_files import ONNX_FILE, PICKLE_FILE, TRUSTED_TYPES
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.models.serving.watcher import ChampionWatcher
from ccml.models.training.trainers import HistGradientBoostingTrainer, LogisticRegressionTrainer, RandomForestTrainer
from ccml.storage.local import LocalModelStore

KEY = b"a signing key of some length"


def _legacy(training: TrainingResult) -> ModelArtifact:
    """A version as ccml saved them before skops: the pipeline pickled with joblib."""
    buffer = io.BytesIO()
    joblib.dump(training.artifact.pipeline, buffer, compress=3)
    data = buffer.getvalue()
    files = {PICKLE_FILE: data, ONNX_FILE: training.artifact.files[ONNX_FILE]}
    manifest = training.artifact.manifest.model_copy(
        update={"files": {name: ArtifactFile(sha256=sha256_hex(b), size=len(b)) for name, b in files.items()}}
    )
    return ModelArtifact(manifest, files)


def _reads(store: LocalModelStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    keys: list[str] = []
    original = store._read

    def spy(key: str, limit: int) -> bytes | None:
        keys.append(key)
        return original(key, limit)

    monkeypatch.setattr(store, "_read", spy)
    return keys


def test_new_versions_store_the_pipeline_as_skops_only(saved_store: LocalModelStore) -> None:
    artifact = saved_store.load()
    assert MODEL_FILE == "model.skops"
    assert set(artifact.files) == {MODEL_FILE, ONNX_FILE}
    record = FeatureSchema.model_validate(artifact.manifest.schema_).example_record()
    assert artifact.pipeline.predict_proba([record]).shape == (1, 2)


def test_the_trusted_list_covers_every_built_in_trainer_and_nothing_else_is_trusted(table: ValidatedTable) -> None:
    # skops's own defaults plus these: the list is reviewed by hand, so it holds exactly what
    # the built-in trainers' pipelines (each calibration included) need.
    import skops.io as sio

    needed: set[str] = set()
    for trainer in (RandomForestTrainer, HistGradientBoostingTrainer, LogisticRegressionTrainer):
        for calibration in ("none", "sigmoid", "isotonic"):
            params = {"n_estimators": 5} if trainer is RandomForestTrainer else None
            model = trainer(params, calibration=calibration).fit(table.features, table.target, table.schema)
            needed |= set(sio.get_untrusted_types(data=sio.dumps(model.pipeline)))  # type: ignore[attr-defined]
    assert needed == set(TRUSTED_TYPES)
    assert not any(name.startswith(("builtins.", "os.", "subprocess", "posix")) for name in TRUSTED_TYPES)


def test_an_unsigned_pickle_is_refused_before_anything_is_unpickled(
    store: LocalModelStore, training: TrainingResult
) -> None:
    version = store.save(_legacy(training)).id
    artifact = store.load(version)  # reading bytes is harmless; unpickling them is not
    with pytest.raises(ArtifactIntegrityError, match="CCML_ALLOW_UNSIGNED_PICKLE"):
        artifact.pipeline  # noqa: B018
    with pytest.raises(ArtifactIntegrityError, match="without a verified signature"):
        SklearnPredictor(artifact)


def test_an_unsigned_pickle_loads_when_the_operator_opts_in(tmp_path: Path, training: TrainingResult) -> None:
    version = LocalModelStore(tmp_path / "s").save(_legacy(training)).id
    opted_in = LocalModelStore(tmp_path / "s", allow_unsigned_pickle=True)
    probabilities = SklearnPredictor(opted_in.load(version)).predict_proba(training.holdout_features)
    assert probabilities.shape == (len(training.holdout_features),)


def test_a_signed_pickle_loads_with_the_key(tmp_path: Path, training: TrainingResult) -> None:
    signed = LocalModelStore(tmp_path / "s", signing_key=KEY)
    version = signed.save(_legacy(training)).id
    expected = training.artifact.pipeline.predict_proba(training.holdout_features)[:, 1]
    got = SklearnPredictor(signed.load(version)).predict_proba(training.holdout_features)
    assert got.tolist() == pytest.approx(expected.tolist())


def test_with_a_key_an_unsigned_version_is_refused_before_its_files_are_read(
    tmp_path: Path, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = LocalModelStore(tmp_path / "s").save(training.artifact).id
    keyed = LocalModelStore(tmp_path / "s", signing_key=KEY)
    reads = _reads(keyed, monkeypatch)
    with pytest.raises(ArtifactIntegrityError, match="not signed"):
        keyed.load(version)
    assert reads == [f"versions/{version}/{MANIFEST_FILE}"]


def test_a_file_larger_than_the_cap_is_refused_unread(
    tmp_path: Path, training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = LocalModelStore(tmp_path / "s").save(training.artifact).id
    capped = LocalModelStore(tmp_path / "s", max_file_bytes=1024)
    reads = _reads(capped, monkeypatch)
    with pytest.raises(ArtifactIntegrityError, match="CCML_MAX_ARTIFACT_BYTES"):
        capped.load(version)
    assert not any(key.endswith((MODEL_FILE, ONNX_FILE)) for key in reads)


def test_a_file_longer_than_its_manifest_says_is_refused(saved_store: LocalModelStore) -> None:
    version = saved_store.resolve()
    path = saved_store.root / "versions" / version / ONNX_FILE
    path.write_bytes(path.read_bytes() + b"\0" * 10)
    with pytest.raises(ArtifactIntegrityError, match="holds more than"):
        saved_store.load()


def test_manifest_file_names_must_be_known(saved_store: LocalModelStore) -> None:
    manifest = saved_store.load().manifest
    for name in ("../../etc/passwd", "/etc/passwd", "sub/model.skops", "other.bin"):
        with pytest.raises(ValueError, match="unknown file name"):
            manifest.model_validate(
                {**manifest.model_dump(by_alias=True), "files": {name: {"sha256": "0" * 64, "size": 1}}}
            )


@pytest.mark.parametrize("key", ["", "   ", "\t\n"])
def test_an_empty_or_blank_signing_key_is_a_settings_error(key: str) -> None:
    with pytest.raises(ConfigError, match="CCML_SIGNING_KEY"):
        Settings.load(signing_key=key)


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def _old_version_id(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).strftime(VERSION_FORMAT)


def test_garbage_of_interrupted_saves_is_collected_and_nothing_else(
    saved_store: LocalModelStore, training: TrainingResult
) -> None:
    committed = saved_store.resolve()
    old_partial, young_partial = _old_version_id(2), _old_version_id(0.01)
    for version in (old_partial, young_partial):
        saved_store._write_new(f"versions/{version}/{MODEL_FILE}", b"half a save")
    stale = saved_store.root / "versions" / committed / ".model.onnx.abc.tmp"
    fresh = saved_store.root / "aliases" / ".champion.json.def.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"temporary")
    _age(stale, 7200)

    removed = saved_store.collect_garbage()

    assert sorted(removed) == sorted([f"versions/{old_partial}/{MODEL_FILE}", str(stale)])
    assert not (saved_store.root / "versions" / old_partial).exists()
    assert (saved_store.root / "versions" / young_partial / MODEL_FILE).exists()
    assert fresh.exists()
    assert not stale.exists()
    assert [v.id for v in saved_store.versions()] == [committed]
    assert saved_store.load().files == saved_store.load(committed).files


def test_every_save_collects_old_garbage(saved_store: LocalModelStore, training: TrainingResult) -> None:
    partial = _old_version_id(3)
    saved_store._write_new(f"versions/{partial}/{MODEL_FILE}", b"left by a killed save")
    saved_store.save(training.artifact)
    assert not (saved_store.root / "versions" / partial).exists()


class _BoomError(RuntimeError):
    """Not one of ccml's errors: what a third-party runtime raises on bytes it cannot parse."""


def test_the_watcher_survives_foreign_exceptions_and_counts_them(
    saved_store: LocalModelStore, training: TrainingResult, schema: FeatureSchema
) -> None:
    good = saved_store.resolve()
    outcomes: list[bool] = []
    fail_for: set[str] = set()

    def factory(artifact: ModelArtifact) -> Any:
        if artifact.version in fail_for:
            raise _BoomError("InvalidProtobuf: junk")
        return SklearnPredictor(artifact)

    watcher = ChampionWatcher(saved_store, factory, schema, on_reload=lambda ok, _v: outcomes.append(ok))
    assert watcher.check().version == good
    bad = saved_store.save(training.artifact).id
    fail_for.add(bad)
    saved_store.promote(bad)
    first, again = watcher.check(), watcher.check()
    assert (first.version, again.version) == (good, good)
    assert "BoomError" in str(first.error)
    assert "failed to load before" in str(again.error)
    assert outcomes == [True, False]  # counted once; not retried until the alias moves
    fixed = saved_store.save(training.artifact).id
    saved_store.promote(fixed)
    assert watcher.check().version == fixed


def test_a_pickle_of_an_earlier_release_finds_its_moved_classes(
    training: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from ccml.core.model_files import load_pickle
    from ccml.models.serving import encoding
    from ccml.models.training import features

    # Pickled as before the models package was split: the classes under their old modules.
    monkeypatch.setitem(sys.modules, "ccml.models.features", features)
    monkeypatch.setitem(sys.modules, "ccml.models.encoding", encoding)
    monkeypatch.setattr(features.SchemaEncoder, "__module__", "ccml.models.features")
    monkeypatch.setattr(encoding.RecordEncoder, "__module__", "ccml.models.encoding")
    buffer = io.BytesIO()
    joblib.dump(training.artifact.pipeline, buffer)
    assert b"ccml.models.features" in buffer.getvalue()
    monkeypatch.undo()
    for old in ("ccml.models.features", "ccml.models.encoding"):
        sys.modules.pop(old, None)

    pipeline = load_pickle(buffer.getvalue(), "old")
    assert pipeline.predict_proba(training.holdout_features).shape == (len(training.holdout_features), 2)
