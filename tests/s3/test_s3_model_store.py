"""S3ModelStore against moto's HTTP server: the same guarantees as the local store.

Write-once versions (If-None-Match), the manifest as commit point, aliases moved by
compare-and-swap (If-Match on the ETag), checksums verified on load, and idempotency claims
of which exactly one racing claimer wins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pytest

from ccml.core.artifact import MANIFEST_FILE, MODEL_FILE
from ccml.core.errors import ArtifactIntegrityError, ModelStoreError, ObjectExistsError
from ccml.core.types import TrainingResult
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.storage.s3 import S3ModelStore, make_client
from tests.s3.helpers import version_ids

pytestmark = pytest.mark.integration

T = TypeVar("T")


@pytest.fixture
def s3_store(server_bucket: str) -> S3ModelStore:
    return S3ModelStore(make_client(), server_bucket, "models/")


def race(actions: list[Callable[[], T]]) -> list[T]:
    """Run the actions in threads released together; re-raise the first error any of them hit."""
    barrier = threading.Barrier(len(actions))
    results: list[T | None] = [None] * len(actions)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = actions[index]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racing thread did not finish"
    if errors:
        raise errors[0]
    return [result for result in results if result is not None]


# -- versions ----------------------------------------------------------------------------
def test_saved_version_is_listed_and_loads_with_identical_predictions(
    s3_store: S3ModelStore, training: TrainingResult
) -> None:
    saved = s3_store.save(training.artifact)

    assert version_ids(s3_store) == [saved.id]
    keys = {item["Key"] for item in make_client().list_objects_v2(Bucket=s3_store.bucket)["Contents"]}
    files = {*training.artifact.manifest.files, MANIFEST_FILE}
    assert MODEL_FILE in files
    assert keys == {f"models/versions/{saved.id}/{name}" for name in files}
    loaded = s3_store.load(saved.id)
    assert loaded.version == saved.id
    assert loaded.files == training.artifact.files
    expected = SklearnPredictor(training.artifact).predict_proba(training.holdout_features)
    np.testing.assert_array_equal(SklearnPredictor(loaded).predict_proba(training.holdout_features), expected)


def test_each_save_of_the_same_artifact_is_a_new_version(s3_store: S3ModelStore, training: TrainingResult) -> None:
    first = s3_store.save(training.artifact)
    second = s3_store.save(training.artifact)

    assert first.id < second.id
    assert version_ids(s3_store) == [first.id, second.id]


def test_write_new_refuses_to_overwrite_an_existing_object(s3_store: S3ModelStore) -> None:
    s3_store._write_new("versions/20260101T000000.000000Z/model.joblib", b"first")

    with pytest.raises(ObjectExistsError):
        s3_store._write_new("versions/20260101T000000.000000Z/model.joblib", b"second")

    assert s3_store._read("versions/20260101T000000.000000Z/model.joblib", 1 << 20) == b"first"


def test_version_without_its_manifest_is_not_listed(s3_store: S3ModelStore, training: TrainingResult) -> None:
    committed = s3_store.save(training.artifact)
    # What a save that died between the artifact and the manifest leaves behind.
    s3_store._write_new(f"versions/{s3_store.new_version_id()}/{MODEL_FILE}", training.artifact.files[MODEL_FILE])

    assert version_ids(s3_store) == [committed.id]


# -- aliases -----------------------------------------------------------------------------
def test_promote_and_rollback_move_the_champion_and_record_history(
    s3_store: S3ModelStore, training: TrainingResult
) -> None:
    v1 = s3_store.save(training.artifact).id
    v2 = s3_store.save(training.artifact).id
    tokens = {s3_store.alias_token()}

    s3_store.promote(v1, reason="first")
    tokens.add(s3_store.alias_token())
    record = s3_store.promote(v2, reason="better")
    tokens.add(s3_store.alias_token())

    assert (record.version, record.previous) == (v2, (v1,))
    assert s3_store.resolve("champion") == v2
    assert {v.id: v.aliases for v in s3_store.versions()} == {v1: (), v2: ("champion",)}

    back = s3_store.rollback(reason="bad release")
    tokens.add(s3_store.alias_token())

    assert (back.version, back.previous) == (v1, ())
    assert s3_store.load("champion").version == v1
    assert len(tokens) == 4  # absent, then a new token after every move
    history = [(e.action, e.version, e.previous, e.reason) for e in s3_store.history()]
    assert history == [
        ("promote", v1, None, "first"),
        ("promote", v2, v1, "better"),
        ("rollback", v1, v2, "bad release"),
    ]
    with pytest.raises(ModelStoreError, match="no earlier version"):
        s3_store.rollback()


def test_racing_promotions_all_land_in_one_chain_without_a_lost_update(
    server_bucket: str, training: TrainingResult
) -> None:
    setup = S3ModelStore(make_client(), server_bucket)
    base = setup.save(training.artifact).id
    setup.promote(base, reason="base")
    challengers = [setup.save(training.artifact).id for _ in range(4)]
    stores = [S3ModelStore(make_client(), server_bucket) for _ in challengers]

    race([lambda s=s, v=v: s.promote(v, reason=v) for s, v in zip(stores, challengers, strict=True)])

    final = setup.alias("champion")
    assert final is not None
    assert final.version in challengers
    # Every move saw the one before it: the champion's past is the base and the other three.
    assert final.previous[0] == base
    assert sorted(final.previous[1:]) == sorted(set(challengers) - {final.version})
    # The history links base -> ... -> final through all four promotions.
    moves = {event.previous: event.version for event in setup.history() if event.reason != "base"}
    chain, current = [], base
    while current in moves:
        current = moves[current]
        chain.append(current)
    assert sorted(chain) == sorted(challengers)
    assert chain[-1] == final.version
    assert list(final.previous[1:]) == chain[:-1]


def test_tampered_artifact_is_refused_on_load(s3_store: S3ModelStore, training: TrainingResult) -> None:
    version = s3_store.save(training.artifact).id
    s3_store.promote(version)
    original = training.artifact.files[MODEL_FILE]
    tampered = original[:-1] + bytes([original[-1] ^ 1])
    make_client().put_object(Bucket=s3_store.bucket, Key=f"models/versions/{version}/{MODEL_FILE}", Body=tampered)

    with pytest.raises(ArtifactIntegrityError, match="does not match its sha256"):
        s3_store.load(version)
    with pytest.raises(ArtifactIntegrityError):
        s3_store.load("champion")


# -- claims ------------------------------------------------------------------------------
IDENTITY = "s3://ccml-demo/incoming/new data+1 é.csv@0123abcd"


def test_second_claim_while_the_first_is_held_is_not_granted(s3_store: S3ModelStore) -> None:
    first = s3_store.claim(IDENTITY, lease_s=600)
    second = s3_store.claim(IDENTITY, lease_s=600)

    assert (first.granted, first.reason) == (True, "claimed")
    assert (second.granted, second.reason) == (False, "already being processed")


def test_failed_claim_can_be_claimed_again(s3_store: S3ModelStore) -> None:
    assert s3_store.claim(IDENTITY, lease_s=600).granted
    s3_store.fail_claim(IDENTITY, "validation failed")

    retry = s3_store.claim(IDENTITY, lease_s=600)

    assert (retry.granted, retry.reason) == (True, "claimed after an earlier attempt failed")
    assert not s3_store.claim(IDENTITY, lease_s=600).granted


def test_completed_claim_is_never_granted_again_and_names_its_version(s3_store: S3ModelStore) -> None:
    assert s3_store.claim(IDENTITY, lease_s=600).granted
    s3_store.complete_claim(IDENTITY, "20260101T000000.000000Z")

    again = s3_store.claim(IDENTITY, lease_s=600)

    assert (again.granted, again.reason, again.version) == (False, "already processed", "20260101T000000.000000Z")


def test_claim_whose_lease_expired_is_taken_over(s3_store: S3ModelStore) -> None:
    assert s3_store.claim(IDENTITY, lease_s=-1).granted  # its holder vanished long ago

    takeover = s3_store.claim(IDENTITY, lease_s=600)

    assert takeover.granted


def test_claims_of_different_inputs_are_independent(s3_store: S3ModelStore) -> None:
    assert s3_store.claim(IDENTITY, lease_s=600).granted
    assert s3_store.claim(IDENTITY.replace("@0123abcd", "@4567ef"), lease_s=600).granted


def test_exactly_one_of_eight_racing_claimers_is_granted(server_bucket: str) -> None:
    stores = [S3ModelStore(make_client(), server_bucket) for _ in range(8)]

    claims = race([lambda s=store: s.claim(IDENTITY, lease_s=600) for store in stores])

    assert len(claims) == 8
    assert sum(claim.granted for claim in claims) == 1
    assert {claim.reason for claim in claims if not claim.granted} == {"already being processed"}


def test_saves_leave_garbage_for_an_operator_and_collect_garbage_removes_only_it(
    s3_store: S3ModelStore, training: TrainingResult
) -> None:
    # The retraining role may not delete (infra/template.yaml): saves must not try to.
    assert S3ModelStore.collects_garbage_on_save is False
    committed = s3_store.save(training.artifact).id
    partial = "20200101T000000.000000Z"  # years old, never committed
    s3_store._write_new(f"versions/{partial}/{MODEL_FILE}", b"half a save")
    s3_store.save(training.artifact)
    assert f"versions/{partial}/{MODEL_FILE}" in s3_store._list("versions/")

    assert s3_store.collect_garbage() == [f"versions/{partial}/{MODEL_FILE}"]
    assert not [key for key in s3_store._list("versions/") if partial in key]
    assert committed in version_ids(s3_store)


def test_reads_stop_at_the_limit_and_refuse_a_larger_object(s3_store: S3ModelStore) -> None:
    s3_store._write_new("versions/20200101T000000.000000Z/model.onnx", b"x" * 5000)
    s3_store._write_new("versions/20200101T000000.000000Z/empty", b"")
    assert s3_store._read("versions/20200101T000000.000000Z/model.onnx", 5000) == b"x" * 5000
    assert s3_store._read("versions/20200101T000000.000000Z/empty", 10) == b""
    with pytest.raises(ArtifactIntegrityError, match="more than 4999 bytes"):
        s3_store._read("versions/20200101T000000.000000Z/model.onnx", 4999)
