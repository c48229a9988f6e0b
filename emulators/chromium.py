"""Debian's headless Chromium driven by Selenium, as the browser tests and ``make
bench-tracker`` use it (``make setup`` installs chromium and chromium-driver)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu")


class ChromiumMissingError(RuntimeError):
    pass


@contextmanager
def headless_chromium(window: str = "1280,1600", page_load_timeout_s: float = 120) -> Iterator[Any]:
    """A Selenium ``WebDriver`` on a fresh headless Chromium, quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        raise ChromiumMissingError(
            "chromium and chromedriver are missing: `make setup` installs them "
            "(apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (*ARGUMENTS, f"--window-size={window}"):
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    session.set_page_load_timeout(page_load_timeout_s)
    try:
        yield session
    finally:
        session.quit()
