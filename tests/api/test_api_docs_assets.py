"""/docs and /redoc are self-hosted: their pages reference only this server, the assets come
from the package (with their licenses), and they stay open when an API key is set."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from ccml.api import create_app, docs
from ccml.api.docs import ASSETS_PATH, REDOC_JS, STATIC_DIR, SWAGGER_CSS, SWAGGER_JS
from ccml.core.components import build_model_store
from ccml.core.settings import Settings

KEY = "docs-key"
PAGES = ["/docs", "/redoc"]
URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("docs") / "home", api_key=KEY)
    models.publish(build_model_store(settings))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def referenced(html: str) -> list[str]:
    """Every src= and href= of a page."""
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)


@pytest.mark.parametrize("page", PAGES)
def test_a_docs_page_names_no_other_host(client: TestClient, page: str) -> None:
    response = client.get(page)  # no key: the docs stay open

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert URL.findall(response.text) == [], "the page and its inline config must not name any host"
    assert referenced(response.text)
    assert all(url.startswith(f"{ASSETS_PATH}/") or url == "/openapi.json" for url in referenced(response.text))


@pytest.mark.parametrize("page", PAGES)
def test_every_asset_a_page_references_is_served_without_a_key(client: TestClient, page: str) -> None:
    for url in referenced(client.get(page).text):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.content, url


def test_the_assets_have_their_types_and_licenses(client: TestClient) -> None:
    types = {SWAGGER_JS: "javascript", REDOC_JS: "javascript", SWAGGER_CSS: "text/css"}
    for name, kind in types.items():
        assert kind in client.get(f"{ASSETS_PATH}/{name}").headers["content-type"], name
    for license_file in ["swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE", "README.md"]:
        assert (STATIC_DIR / license_file).stat().st_size > 0, license_file
    assert "Apache License" in (STATIC_DIR / "swagger-ui/LICENSE").read_text()
    assert "MIT License" in (STATIC_DIR / "redoc/LICENSE").read_text()


def test_swagger_ui_is_told_not_to_call_the_online_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_packaged_redoc_loads_no_logo_from_its_cdn() -> None:
    """ReDoc 2 always shows a logo from cdn.redoc.ly; the packaged copy has it replaced (see static/README.md)."""
    bundle = (STATIC_DIR / REDOC_JS).read_text("utf-8")

    assert "cdn.redoc.ly" not in bundle
    assert 'alt:"redocly logo",onError:()=>t(!1),src:"data:image/gif;base64,' in bundle


@pytest.mark.parametrize("page", PAGES)
def test_a_docs_page_forbids_other_origins_by_content_security_policy(client: TestClient, page: str) -> None:
    policy = client.get(page).headers["content-security-policy"]

    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy


def test_under_a_root_path_the_pages_point_below_it(tmp_path: Any, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(tmp_path / "home")
    with TestClient(create_app(settings), root_path="/api") as prefixed:
        html = prefixed.get("/docs").text

    assert referenced(html)
    assert all(url.startswith(f"/api{ASSETS_PATH}/") for url in referenced(html))
    assert "url: '/api/openapi.json'" in html


def test_the_cdn_pages_of_fastapi_are_not_registered(client: TestClient) -> None:
    assert client.get("/docs/oauth2-redirect").status_code == 404
    assert "cdn.jsdelivr.net" not in client.get("/docs").text


def test_without_the_packaged_assets_the_api_still_starts_and_says_why(
    tmp_path: Any, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install that lost the package data (see pyproject's package-data) must not lose the API."""
    monkeypatch.setattr(docs, "STATIC_DIR", tmp_path / "no-static")
    with structlog.testing.capture_logs() as logs:
        app = create_app(make_settings(tmp_path / "home"))
    with TestClient(app) as bare:
        assert bare.get("/health").status_code == 200
        assert bare.get(f"{ASSETS_PATH}/{SWAGGER_JS}").status_code == 404

    assert [line["directory"] for line in logs if line["event"] == "docs_assets_missing"] == [
        str(tmp_path / "no-static")
    ]
