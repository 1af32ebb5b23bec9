"""Serving state: the model currently answering, and its zero-downtime replacement.

``ChampionWatcher`` keeps one reference to the live ``Predictor``. A check reads the alias's
cheap change token first; only when it moved does it load the new version, verify it (checksum,
signature, schema, a smoke prediction) and then swap the reference in one assignment. Requests
read the reference once, so each is answered entirely by one version; a failed load leaves
the old model serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ccml.core.artifact import ModelArtifact
from ccml.core.contracts import CHAMPION, ModelStore, Predictor
from ccml.core.errors import ArtifactIntegrityError, CcmlError, ModelNotFoundError, PredictionError
from ccml.core.schema import FeatureSchema

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of one ``ChampionWatcher.check``: whether the model changed, the version serving, any error."""

    changed: bool
    version: str | None
    error: str | None = None


class ChampionWatcher:
    """The live ``Predictor`` of one alias, replaced only by a version that passed verification.

    ``current`` is read without a lock: a request reads it once and is answered by that version.
    ``check`` holds a lock and blocks while it loads a new version. ``on_reload``, if given, gets
    (success, version serving) after each swap and each failed reload (an unset alias aside).
    """

    def __init__(
        self,
        store: ModelStore,
        predictor_factory: Callable[[ModelArtifact], Predictor],
        schema: FeatureSchema,
        alias: str = CHAMPION,
        on_reload: Callable[[bool, str | None], None] | None = None,
    ) -> None:
        self.store = store
        self.predictor_factory = predictor_factory
        self.schema = schema
        self.alias = alias
        self.on_reload = on_reload
        self.current: Predictor | None = None
        self._token: str | None = None
        self._failed: tuple[str | None, str] | None = None  # (alias token, version) that failed
        self._lock = threading.Lock()

    @property
    def version(self) -> str | None:
        """The version serving now, or None before the first successful load."""
        current = self.current
        return current.version if current else None

    def _verified(self, version: str) -> Predictor:
        artifact = self.store.load(version)
        if not artifact.trained_on(self.schema):
            raise PredictionError(f"model {version} was trained on another feature schema than the one served")
        predictor = self.predictor_factory(artifact)
        predictor.predict_proba([self.schema.example_record()])  # fail here, not on a client's request
        return predictor

    def check(self, *, force: bool = False) -> ReloadResult:
        """Reload if the alias moved (or a retry is forced); never raises for a bad model."""
        with self._lock:
            token: str | None = None
            version: str | None = None
            try:
                token = self.store.alias_token(self.alias)
                if token is None:
                    return ReloadResult(False, self.version, None if self.current else "no champion yet")
                if token == self._token and not force:
                    return ReloadResult(False, self.version)
                version = self.store.resolve(self.alias)
                if self.current is not None and version == self.current.version:
                    self._token = token
                    return ReloadResult(False, version)
                if not force and self._failed == (token, version):
                    # A model that failed verification fails again; wait for the alias to move.
                    return ReloadResult(False, self.version, f"model {version} failed to load before")
                predictor = self._verified(version)
            except ModelNotFoundError as exc:
                return ReloadResult(False, self.version, str(exc))
            except Exception as exc:  # the watcher's boundary: nothing a version holds may stop it
                # A plain store error may pass (a timeout): try again at the next poll. Anything
                # else (a bad artifact, a runtime that chokes on it) fails again until the alias moves.
                if not isinstance(exc, CcmlError) or isinstance(exc, ArtifactIntegrityError | PredictionError):
                    self._failed = (token, version or "")
                error = str(exc) if isinstance(exc, CcmlError) else f"{type(exc).__name__}: {exc}"
                log.error(
                    "model_reload_failed", alias=self.alias, version=version, error=error[:500], serving=self.version
                )
                if self.on_reload:
                    self.on_reload(False, self.version)
                return ReloadResult(False, self.version, error[:500])
            previous = self.version
            self.current = predictor
            self._token = token
            self._failed = None
            log.info("model_reloaded", alias=self.alias, version=predictor.version, previous=previous)
            if self.on_reload:
                self.on_reload(True, predictor.version)
            return ReloadResult(True, predictor.version)
