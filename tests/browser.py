"""Debian's chromium driven headless through chromium-driver (selenium), for the browser tests.

``make test`` installs both (as root); without them the browser tests skip. The flags keep a
headless Chromium off this machine's closed network (background networking, component updates,
sync) and in a profile of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
RENDER_TIMEOUT_S = 60  # a busy two-core machine takes a few seconds to parse a page's bundles
MISSING = f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); `make test` installs them"


def available() -> bool:
    """Whether both the browser and its driver are installed."""
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


@contextmanager
def headless_chromium(profile: Path) -> Iterator[Any]:
    """A selenium driver of headless chromium that records the browser console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(RENDER_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()


def severe_entries(driver: Any) -> list[dict[str, Any]]:
    """The console's errors so far (a failed or blocked load of anything is one)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
