"""The optional API key (CCML_API_KEY): the dependency that declares it on the protected routes,
and the gate that checks it before anything else looks at a request.

The gate runs in ``RequestContextMiddleware``, ahead of the body limits: an anonymous client
gets 401 on a protected route whatever its body, never a 413, 408, 400 or 422 that would tell
it about the limits or the schema. It is the one check: the FastAPI dependency only declares
the key on the routes that need it, which puts the security scheme into the OpenAPI document
and tells the gate which routes those are.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Final

from fastapi import Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import Scope

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The value of CCML_API_KEY.")
UNAUTHORIZED_MESSAGE: Final = "missing or wrong X-API-Key header"


def route_path(scope: Scope) -> str:
    """The path the router matches: behind a proxy prefix (uvicorn --root-path) the scope's path
    includes the root path, as Starlette's router sees it before matching."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def unauthorized() -> HTTPException:
    """Return the 401 answer to a missing or wrong API key, with its ``WWW-Authenticate`` challenge."""
    return HTTPException(401, UNAUTHORIZED_MESSAGE, headers={"WWW-Authenticate": "APIKey"})


def _matches(expected: bytes, key: bytes | None) -> bool:
    # compare_digest: the time taken does not reveal how much of the key matched.
    return key is not None and secrets.compare_digest(key, expected)


def api_key_declaration() -> Callable[[str | None], Awaitable[None]]:
    """Return the FastAPI dependency that declares the ``X-API-Key`` header on a route.

    It checks nothing: ``KeyGate`` refused a missing or wrong key before the request got here.
    It puts the security scheme of the routes it is on into the OpenAPI document, and marks
    those routes for the gate.
    """

    async def declare_api_key(key: Annotated[str | None, Security(API_KEY_HEADER)]) -> None:
        """Nothing to do: the gate checked the key."""

    return declare_api_key


class KeyGate:
    """Which requests need the key: a method of a route that has the API-key dependency."""

    def __init__(self, expected: SecretStr, routes: Iterable[BaseRoute], dependency: object) -> None:
        self._expected = expected.get_secret_value().encode()
        self._routes: dict[str, APIRoute] = {
            route.path: route for route in routes if isinstance(route, APIRoute) and dependency in route.dependencies
        }

    def refuses(self, scope: Scope, key: bytes | None) -> bool:
        """Whether this request needs the key and ``key`` (the raw header value) is not it. A
        refused request's scope gets its route, for the metrics and the log line."""
        route = self._routes.get(route_path(scope))
        if route is None or scope["method"] not in (route.methods or ()) or _matches(self._expected, key):
            return False
        scope["route"] = route
        return True
