"""The small JSON documents a model store keeps beside its versions: aliases, history, claims.

Pydantic models, so what is written is what is read back, field for field, and a damaged
document is refused with the field that is wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ccml.core.errors import ModelStoreError
from ccml.core.objects import METADATA_LIMIT, ObjectStore

HistoryAction = Literal["promote", "force_promote", "rollback"]
ClaimStatus = Literal["started", "done", "failed"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


class AliasRecord(_Record):
    """Where an alias points now, and the versions it pointed to before (oldest first)."""

    alias: str
    version: str
    previous: tuple[str, ...] = ()
    updated_at: str = ""


class HistoryEvent(_Record):
    """One move of an alias: a promotion (forced or not) or a rollback."""

    at: datetime
    action: HistoryAction
    alias: str
    version: str
    previous: str | None
    reason: str
    extra: dict[str, Any] = Field(default_factory=dict)


class ClaimRecord(_Record):
    """The state of one input's processing (see ``ClaimBook``)."""

    identity: str
    status: ClaimStatus
    at: str
    lease_until: float | None = None
    version: str | None = None
    error: str | None = None


R = TypeVar("R", bound=_Record)


def read_record(objects: ObjectStore, key: str, model: type[R], what: str) -> tuple[R | None, str | None]:
    """The record stored at ``key`` (None if absent) and the change token it was read at.

    Raises:
        ModelStoreError: the object is not a valid ``model`` document (the message names ``what``).
    """
    token = objects.token(key, what)
    data = objects.read(key, METADATA_LIMIT, what)
    if data is None:
        return None, token
    try:
        return model.model_validate_json(data), token
    except ValidationError as exc:
        raise ModelStoreError(f"{what} is unreadable: {exc.errors()[0]['msg']}") from exc
