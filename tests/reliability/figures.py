"""How big a reliability run is, and where its figures go.

``make test`` runs this suite at its fast size; ``make reliability`` sets
``RELIABILITY_PROFILE=full`` for the sizes the README quotes and ``RELIABILITY_FIGURES`` to a
JSON-lines file that ``scripts/reliability_table.py`` turns into the figures table. Each test
records what it ran (cases, failures) from its own counters, never from a constant.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FULL = os.environ.get("RELIABILITY_PROFILE", "fast") == "full"


def scale(fast: int, full: int) -> int:
    """The size of a run: ``full`` under ``make reliability``, ``fast`` in ``make test``."""
    return full if FULL else fast


def record(suite: str, case: str, *, cases: int, failures: int, **figures: Any) -> None:
    """Append one result row (no-op unless ``RELIABILITY_FIGURES`` names a file)."""
    target = os.environ.get("RELIABILITY_FIGURES")
    if not target:
        return
    row = {"suite": suite, "case": case, "cases": cases, "failures": failures, **figures}
    with Path(target).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, default=str) + "\n")
