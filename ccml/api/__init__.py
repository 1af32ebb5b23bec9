"""The REST inference service: a FastAPI app composed from settings-built components."""

from __future__ import annotations

from ccml.api.app import create_app

__all__ = ["create_app"]
