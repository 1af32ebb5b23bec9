"""/docs and /redoc in a real headless Chromium (Debian's chromium and chromium-driver), served
by a real ``ccml serve`` with an API key set: both render the /predict operation from the
packaged assets, and the browser logs no error (a blocked or failed load of anything, from
this server or another host, is a SEVERE console entry)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ccml.core.components import build_model_store
from ccml.core.settings import Settings
from tests import browser as browser_tools
from tests.browser import RENDER_TIMEOUT_S, severe_entries

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREDICT_OPERATION = "operations-predict-predict_predict_post"

if not browser_tools.available():
    pytest.skip(browser_tools.MISSING, allow_module_level=True)

pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def server_url(
    tmp_path_factory: pytest.TempPathFactory,
    make_settings: Callable[..., Settings],
    models: Any,
    ccml_serve: Callable[..., Any],
) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("docs-browser") / "home")
    models.publish(build_model_store(settings))
    server = ccml_serve(settings.home, env={"CCML_API_KEY": "browser-key"})  # the docs stay open
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with browser_tools.headless_chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def test_swagger_ui_renders_the_predict_operation(server_url: str, browser: Any) -> None:
    browser.get(f"{server_url}/docs")

    operation = WebDriverWait(browser, RENDER_TIMEOUT_S).until(
        expected_conditions.visibility_of_element_located((By.ID, PREDICT_OPERATION))
    )

    assert "/predict" in operation.text
    assert "POST" in operation.text
    assert browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title")
    assert severe_entries(browser) == []


def test_redoc_renders_the_predict_operation(server_url: str, browser: Any) -> None:
    browser.get(f"{server_url}/redoc")

    WebDriverWait(browser, RENDER_TIMEOUT_S).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "[data-section-id^='tag/predict']"))
    )
    WebDriverWait(browser, RENDER_TIMEOUT_S).until(
        lambda driver: "/predict" in driver.find_element(By.TAG_NAME, "body").text
    )

    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Predict whether one student completes the course" in text
    assert severe_entries(browser) == []
