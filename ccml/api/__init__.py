"""The REST inference service: a FastAPI app composed from settings-built components.

A composition root: may import ``ccml.core``, ``ccml.models.serving`` and, through the registry,
the backends; never ``ccml.models.training`` (serving needs no training stack) or ``handlers``.
"""

from __future__ import annotations

from ccml.api.app import create_app

__all__ = ["create_app"]
