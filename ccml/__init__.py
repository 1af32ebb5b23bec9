"""ccml: train, version, promote and serve a model that predicts course completion."""

from __future__ import annotations

__version__ = "0.1.0"
