"""Aliases and their history over an ``ObjectStore``.

An alias (``aliases/<alias>.json``) names one version and keeps the versions it named before,
so ``rollback`` can go back. It moves by compare-and-swap on the object's change token, so two
writers never both win and no move is lost; every move appends a write-once record under
``history/``.
"""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar, Final

import structlog
from pydantic import ValidationError

from ccml.core.artifact import utc_now
from ccml.core.errors import CcmlError, ConcurrentUpdateError, ModelStoreError
from ccml.core.objects import METADATA_LIMIT, ObjectStore
from ccml.core.records import AliasRecord, HistoryAction, HistoryEvent, read_record
from ccml.core.versions import VERSION_FORMAT

log = structlog.get_logger(__name__)

ALIAS_PATTERN: Final = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
CHAMPION: Final = "champion"


def alias_key(alias: str) -> str:
    """Return the store key of ``alias``'s record.

    Raises:
        ModelStoreError: ``alias`` is not 1-63 lowercase letters, digits, '-' or '_' starting with a letter
            (which also keeps it from naming a path outside ``aliases/``).
    """
    if not ALIAS_PATTERN.match(alias):
        raise ModelStoreError(f"invalid alias {alias!r}: use lowercase letters, digits, '-' and '_'")
    return f"aliases/{alias}.json"


class AliasBook:
    """Reads and moves aliases; records each move in the history."""

    RETRIES: ClassVar[int] = 20

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def state(self, alias: str) -> tuple[AliasRecord | None, str | None]:
        """The alias's record (None if unset) and the change token it was read at."""
        return read_record(self.objects, alias_key(alias), AliasRecord, f"alias {alias!r}")

    def get(self, alias: str) -> AliasRecord | None:
        """Return the alias's record, or None if it is not set."""
        return self.state(alias)[0]

    def token(self, alias: str) -> str | None:
        """A cheap token that changes whenever the alias moves (for hot reload polling)."""
        return self.objects.token(alias_key(alias), "an alias")

    def all(self) -> dict[str, AliasRecord]:
        """Return every set alias's record by name; keys under ``aliases/`` that are not alias names are skipped."""
        names = [
            key.removeprefix("aliases/").removesuffix(".json") for key in self.objects.list_keys("aliases/", "aliases")
        ]
        records = {name: self.get(name) for name in names if ALIAS_PATTERN.match(name)}
        return {name: record for name, record in records.items() if record is not None}

    def move(self, alias: str, target: str | None, action: HistoryAction, reason: str) -> AliasRecord:
        """Point ``alias`` at ``target`` (None: back to where it pointed before), by compare-and-swap."""
        for attempt in range(self.RETRIES):
            current, token = self.state(alias)
            if target is None:  # rollback
                if current is None or not current.previous:
                    raise ModelStoreError(f"alias {alias!r} has no earlier version to roll back to")
                new = AliasRecord(
                    alias=alias, version=current.previous[-1], previous=current.previous[:-1], updated_at=_now()
                )
            else:
                if current is None:
                    previous: tuple[str, ...] = ()
                elif current.version == target:  # re-promoting the same version adds no history
                    previous = current.previous
                else:
                    previous = (*current.previous, current.version)
                new = AliasRecord(alias=alias, version=target, previous=previous, updated_at=_now())
            try:
                self.objects.swap(alias_key(alias), new.to_json(), token, "an alias")
            except ConcurrentUpdateError:
                time.sleep(0.005 * (attempt + 1))
                continue
            before = current.version if current else None
            self._record(action, alias, new.version, before, reason, {})
            log.info("alias_moved", alias=alias, version=new.version, previous=before, action=action)
            return new
        raise ConcurrentUpdateError(f"alias {alias!r} kept changing under us; try again")

    def _record(
        self, action: HistoryAction, alias: str, version: str, previous: str | None, reason: str, extra: dict[str, Any]
    ) -> None:
        at = utc_now()
        event = HistoryEvent(
            at=at, action=action, alias=alias, version=version, previous=previous, reason=reason, extra=extra
        )
        key = f"history/{at.strftime(VERSION_FORMAT)}-{action}-{alias}.json"
        try:
            self.objects.write_new(key, event.to_json(), "history")
        except CcmlError as exc:
            # The alias already moved; a lost history line must not turn that into a failure.
            log.warning("history_write_failed", key=key, error=str(exc))

    def history(self) -> list[HistoryEvent]:
        """Return every recorded alias move, oldest first; ``ModelStoreError`` if a record is unreadable."""
        events = []
        for key in sorted(self.objects.list_keys("history/", "history")):
            data = self.objects.read(key, METADATA_LIMIT, "history")
            if data is None:
                continue
            try:
                events.append(HistoryEvent.model_validate_json(data))
            except ValidationError as exc:
                raise ModelStoreError(f"history record {key} is unreadable: {exc.errors()[0]['msg']}") from exc
        return events


def _now() -> str:
    return utc_now().isoformat()
