"""Fixtures of the integration tests beside the stack's (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.chromium import ChromiumMissingError, headless_chromium


@pytest.fixture
def browser() -> Iterator[object]:
    """A fresh headless Chromium (Selenium ``WebDriver``), quit after the test."""
    try:
        with headless_chromium() as session:
            yield session
    except ChromiumMissingError as missing:
        pytest.fail(str(missing))
