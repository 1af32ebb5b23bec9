"""The query parameters of an explained prediction: ``?explain=true`` and ``?top=N``.

The prediction endpoints are pure ASGI and read the raw query string themselves. A request
without a query string costs one check; with one, bad values are refused with a 422 naming the
parameter (``query.explain``, ``query.top``), as FastAPI would. Other parameters are ignored,
as FastAPI ignores them.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from fastapi.exceptions import RequestValidationError

from ccml.models.serving.explanations import MAX_TOP

# What pydantic (and so FastAPI) reads as a boolean query value.
_TRUE: Final = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE: Final = frozenset({"false", "0", "no", "off", "f", "n"})


def _refuse(name: str, kind: str, message: str, value: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("query", name), "msg": message, "input": value}])


def explain_top(query: bytes, default_top: int) -> int | None:
    """How many factors to explain each prediction with, or None when ``explain`` is not true.

    Raises:
        RequestValidationError: ``explain`` is not a boolean, or ``top`` not a whole number from 1 to ``MAX_TOP``.
    """
    explain, top = False, default_top
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "explain":
            text = value.strip().lower()
            if text not in _TRUE and text not in _FALSE:
                raise _refuse(name, "bool_parsing", "Input should be a valid boolean, unable to interpret input", value)
            explain = text in _TRUE
        elif name == "top":
            text = value.strip()
            # Three ASCII digits at most: int() of a long string is slow, and past 4,300 digits an error.
            if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= MAX_TOP):
                message = f"Input should be a whole number from 1 to {MAX_TOP}"
                raise _refuse(name, "top_range", message, value)
            top = int(text)
    return top if explain else None
