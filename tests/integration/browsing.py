"""Browser-test helpers shared by the Selenium tests (Debian's headless Chromium)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def navigate_by_clicking(driver: Any, find: Callable[[], Any]) -> None:
    """Click something that loads a new page, and wait until the new page is there: the
    click can return before the browser leaves the old page (a stale element). ``find``
    locates the element afresh: Chromium can refuse a node it has just handed out ("does
    not belong to the document") while it settles a page, and the click is then tried
    again on the element found anew."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    for attempt in range(3):
        try:
            page = driver.find_element(By.TAG_NAME, "html")
            find().click()
            break
        except (StaleElementReferenceException, WebDriverException) as exc:
            settling = isinstance(exc, StaleElementReferenceException) or (
                "belong to the document" in str(exc)
            )
            if attempt == 2 or not settling:
                raise
            time.sleep(0.5)
    # While the page is swapped, Chromium can also answer a probe with a transient error
    # ("unhandled inspector error"): the wait asks again instead of failing.
    wait = WebDriverWait(driver, 120, ignored_exceptions=(WebDriverException,))
    wait.until(expected_conditions.staleness_of(page))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
