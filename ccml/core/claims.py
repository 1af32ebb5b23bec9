"""Idempotency claims over an ``ObjectStore``: process each input once, despite at-least-once delivery.

A claim (``processed/<sha256 of the input's identity>.json``) is a write-once marker; of two
racing claimers exactly one wins. A claim whose holder failed (``fail``) or vanished (its
lease expired) can be taken over by compare-and-swap, so a retry after a failure still runs;
a ``done`` claim never can.
"""

from __future__ import annotations

import hashlib

from ccml.core.artifact import utc_now
from ccml.core.errors import ConcurrentUpdateError, ModelStoreError, ObjectExistsError
from ccml.core.objects import ObjectStore
from ccml.core.records import ClaimRecord, ClaimStatus, read_record
from ccml.core.types import Claim


def claim_key(identity: str) -> str:
    """Return the store key of ``identity``'s claim: its sha256, since an identity is a URI of any length."""
    return f"processed/{hashlib.sha256(identity.encode()).hexdigest()}.json"


class ClaimBook:
    """Claims, completes and fails the processing of inputs named by an identity string."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def _state(self, identity: str) -> tuple[ClaimRecord | None, str | None]:
        return read_record(self.objects, claim_key(identity), ClaimRecord, f"claim for {identity!r}")

    def claim(self, identity: str, lease_s: float) -> Claim:
        """Claim the right to process an input exactly once (see the module docstring)."""
        key = claim_key(identity)
        now = utc_now()
        started = ClaimRecord(
            identity=identity, status="started", at=now.isoformat(), lease_until=now.timestamp() + lease_s
        )
        state, token = self._state(identity)
        if state is None:
            try:
                self.objects.write_new(key, started.to_json(), "a claim")
                return Claim(identity, True, "claimed")
            except ObjectExistsError:
                state, token = self._state(identity)
        if state is None:  # written and gone again between two reads: only a hand can do that
            raise ModelStoreError(f"claim for {identity!r} vanished while it was being read")
        if state.status == "done":
            return Claim(identity, False, "already processed", state.version)
        if state.status == "started" and (state.lease_until or 0.0) > now.timestamp():
            return Claim(identity, False, "already being processed")
        try:  # failed or expired: take it over, unless another claimer just did
            self.objects.swap(key, started.to_json(), token, "a claim")
        except ConcurrentUpdateError:
            return Claim(identity, False, "already being processed")
        return Claim(identity, True, "claimed after an earlier attempt failed")

    def _settle(self, identity: str, status: ClaimStatus, version: str | None = None, error: str | None = None) -> None:
        _, token = self._state(identity)
        record = ClaimRecord(identity=identity, status=status, at=utc_now().isoformat(), version=version, error=error)
        self.objects.swap(claim_key(identity), record.to_json(), token, "a claim")

    def complete(self, identity: str, version: str | None) -> None:
        """Mark the input processed, by ``version`` (None: it made no version): later claims are refused for good.

        Raises:
            ConcurrentUpdateError: the claim changed between this call's read and its write.
        """
        self._settle(identity, "done", version=version)

    def fail(self, identity: str, error: str) -> None:
        """Mark the processing failed (``error`` kept to 500 characters): a later claim may take it over.

        Raises:
            ConcurrentUpdateError: the claim changed between this call's read and its write.
        """
        self._settle(identity, "failed", error=error[:500])
