"""``GET /model/report``: the champion's evaluation report as one self-contained page, through
TestClient, and rendered by a real ``ccml serve`` in headless Chromium: every figure decodes
and is drawn, the console shows no error, and the page fetches nothing."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ccml.api.app import create_app
from ccml.api.routes import REPORT_POLICY
from ccml.core.artifact import ModelArtifact
from ccml.core.components import build_model_store
from ccml.core.model_files import REPORT_FILE
from ccml.core.settings import Settings
from ccml.models.training.fitting import with_files
from tests import browser as browser_tools
from tests.browser import RENDER_TIMEOUT_S, severe_entries

SECTIONS = ["summary", "metrics", "curves", "calibration", "confusion", "importance", "data", "notes"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], models: Any
) -> Iterator[Any]:
    settings = make_settings(tmp_path_factory.mktemp("report") / "home")
    models.publish(build_model_store(settings), index=1)  # the second model: trained with a champion
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_report_is_one_self_contained_page_with_every_section(client: Any) -> None:
    response = client.get("/model/report")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == REPORT_POLICY
    page = response.text
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"(?!data:)", page), "the page must fetch nothing"
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 4  # curves, reliability, confusion matrix, importance
    assert all(base64.b64decode(image).startswith(PNG) for image in images)
    # The second model was trained with the first as champion: both are on the curves and in the table.
    assert re.search(r"champion \d{8}T\d{6}\.\d{6}Z \(same holdout\)", page)


def test_a_version_without_a_report_gets_a_404_naming_it(
    tmp_path: Path, make_settings: Callable[..., Settings], models: Any
) -> None:
    settings = make_settings(tmp_path / "home")
    store = build_model_store(settings)
    artifact = models.artifacts[0]
    files = {name: data for name, data in artifact.files.items() if name != REPORT_FILE}
    older: ModelArtifact = with_files(artifact.manifest, files)
    version = store.save(older).id
    store.promote(version)
    with TestClient(create_app(settings)) as test_client:
        response = test_client.get("/model/report")
    assert response.status_code == 404
    message = response.json()["message"]
    assert version in message
    assert "no evaluation report" in message


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not browser_tools.available(), reason=browser_tools.MISSING)
def test_the_report_renders_in_a_real_browser(
    tmp_path: Path, make_settings: Callable[..., Settings], models: Any, ccml_serve: Callable[..., Any]
) -> None:
    pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    settings = make_settings(tmp_path / "home")
    models.publish(build_model_store(settings), index=1)
    server = ccml_serve(settings.home)
    try:
        with browser_tools.headless_chromium(tmp_path / "profile") as browser:
            browser.get(f"{server.url}/model/report")
            WebDriverWait(browser, RENDER_TIMEOUT_S).until(
                lambda driver: driver.execute_script("return document.readyState") == "complete"
            )
            images = browser.find_elements(By.TAG_NAME, "img")
            assert len(images) >= 4  # curves, reliability, confusion matrix, importance
            for image in images:
                drawn = browser.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth > 0 && arguments[0].width > 0", image
                )
                assert drawn, image.get_attribute("alt")
            headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
            assert {"Metrics", "ROC and precision-recall", "Calibration", "Permutation importance"} <= set(headings)
            assert severe_entries(browser) == []
    finally:
        server.stop()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not browser_tools.available(), reason=browser_tools.MISSING)
def test_a_report_planted_in_the_store_runs_no_script_and_fetches_nothing(
    tmp_path: Path, make_settings: Callable[..., Settings], models: Any, ccml_serve: Callable[..., Any]
) -> None:
    pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    settings = make_settings(tmp_path / "home")
    store = build_model_store(settings)
    hostile = (
        b"<!DOCTYPE html><html><head><title>planted</title></head><body><h1>planted</h1>"
        b"<script>window.ran = true; document.title = 'ran';</script>"
        b'<img alt="beacon" src="http://127.0.0.1:9/beacon.png"></body></html>'
    )
    artifact = models.artifacts[0]
    version = store.save(with_files(artifact.manifest, {**artifact.files, REPORT_FILE: hostile})).id
    store.promote(version)
    server = ccml_serve(settings.home)
    try:
        with browser_tools.headless_chromium(tmp_path / "profile") as browser:
            browser.get(f"{server.url}/model/report")
            assert browser.find_element("tag name", "h1").text == "planted"  # the page itself is shown
            assert browser.execute_script("return window.ran === undefined")
            assert browser.title == "planted"
            refused = " ".join(entry["message"] for entry in severe_entries(browser))
            assert "Content Security Policy" in refused
    finally:
        server.stop()
