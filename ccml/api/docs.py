"""The interactive docs, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), from copies of their
assets packaged with ccml (``ccml/api/static``; versions and licenses in its README), so the
pages work without internet and load nothing from another host. They stay open with an API key.

FastAPI's own pages load the assets from a CDN, a favicon from fastapi.tiangolo.com and ReDoc's
fonts from Google; Swagger UI's default validator badge is an image from validator.swagger.io.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

log = structlog.get_logger(__name__)
STATIC_DIR: Final = Path(__file__).parent / "static"
ASSETS_PATH: Final = "/docs/assets"
SWAGGER_JS: Final = "swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS: Final = "swagger-ui/swagger-ui.css"
FAVICON: Final = "swagger-ui/favicon-32x32.png"
REDOC_JS: Final = "redoc/redoc.standalone.js"
# The browser enforces what the pages promise: scripts, styles, images and API calls from this
# origin only (inline scripts and styles are the pages' own; ReDoc runs a worker from a blob).
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)


def _secured(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def add_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve the packaged assets and the two pages. The app is built with ``docs_url=None`` and
    ``redoc_url=None``, so FastAPI's CDN-based pages are not registered."""
    if (STATIC_DIR / SWAGGER_JS).is_file():
        app.mount(ASSETS_PATH, StaticFiles(directory=STATIC_DIR), name="docs-assets")
    else:  # an install without the package data: predictions matter more than the docs pages
        log.warning("docs_assets_missing", directory=str(STATIC_DIR))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        assets = root + ASSETS_PATH
        return _secured(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{assets}/{SWAGGER_JS}",
                swagger_css_url=f"{assets}/{SWAGGER_CSS}",
                swagger_favicon_url=f"{assets}/{FAVICON}",
                oauth2_redirect_url=None,  # no OAuth2 here: the key is an X-API-Key header
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        assets = root + ASSETS_PATH
        return _secured(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{assets}/{REDOC_JS}",
                redoc_favicon_url=f"{assets}/{FAVICON}",
                with_google_fonts=False,
            )
        )
