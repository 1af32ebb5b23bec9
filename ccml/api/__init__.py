"""The REST inference service: a FastAPI app composed from settings-built components.

A composition root: may import anything in ``ccml`` but ``ccml.models.training`` is never needed
to serve; never ``handlers`` (the other composition).
"""

from __future__ import annotations

from ccml.api.app import create_app

__all__ = ["create_app"]
