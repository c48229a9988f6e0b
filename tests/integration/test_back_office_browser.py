"""The back office in a real browser: Debian's headless Chromium driven by Selenium logs
in, creates a campaign through the form (after a refused one) and opens its report page.
Screenshots are kept under .local/artifacts/back-office/ (the path is printed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulators.config import ROOT
from shared.campaigns.admin import issue_csm_key
from shared.campaigns.firestore_admin import FirestoreCsmAccounts
from shared.platform import clients
from shared.system.resources import CREDENTIALS_DATABASE
from tests.integration import browsing
from tests.integration.campaign_cleanup import campaigns_ending_with, remove

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / ".local" / "artifacts" / "back-office"


def test_a_csm_creates_a_campaign_in_the_form_and_opens_its_report(
    stack: dict[str, str], browser: object
) -> None:
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    driver = browser
    suffix = uuid.uuid4().hex[:8]
    retailer, product = f"web-{suffix}", f"pw-{suffix}"
    project = stack["GOOGLE_CLOUD_PROJECT"]
    firestore = clients.firestore_client(project)
    firestore.collection("retailers").document(retailer).set({"name": retailer})
    now = datetime.now(UTC)
    bq = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    errors = bq.insert_rows_json(
        f"{project}.cartwise.page_views",
        [
            {
                "row_id": str(uuid.uuid4()),
                "event_id": str(uuid.uuid4()),
                "retailer_id": retailer,
                "shopper_id": "s1",
                "session_id": None,
                "occurred_at": now.isoformat(),
                "ingested_at": now.isoformat(),
                "url": "https://shop.test/p",
                "page_type": "product",
                "product_id": product,
                "category": None,
            }
        ],
        timeout=60,
    )
    assert errors == []
    credentials = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"], CREDENTIALS_DATABASE)
    key = issue_csm_key(FirestoreCsmAccounts(credentials), f"csm-{suffix}", "csm", [retailer], now)
    try:
        run_in_browser(driver, stack["CAMPAIGNS_URL"], suffix, retailer, product, key, now)
    finally:
        remove(
            stack,
            campaign_ids=campaigns_ending_with(stack, suffix),
            keys=[key],
            retailers=[retailer],
        )


def run_in_browser(
    driver: Any, url: str, suffix: str, retailer: str, product: str, key: str, now: datetime
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    shots = ARTIFACTS / suffix
    shots.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> Path:
        path = shots / f"{name}.png"
        assert driver.save_screenshot(str(path))
        return path

    def navigate_by_clicking(find: Any) -> None:
        browsing.navigate_by_clicking(driver, find)

    driver.get(f"{url}/campaigns")
    assert driver.current_url.endswith("/login")  # no session yet
    driver.find_element(By.ID, "key").send_keys("cwc_wrong")
    navigate_by_clicking(lambda: driver.find_element(By.ID, "login"))
    assert "Unknown or revoked key" in driver.find_element(By.CSS_SELECTOR, ".errors").text
    driver.find_element(By.ID, "key").send_keys(key)
    navigate_by_clicking(lambda: driver.find_element(By.ID, "login"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Portfolio"  # the landing page
    assert f"csm-{suffix} (csm; {retailer})" in driver.find_element(By.CLASS_NAME, "who").text
    driver.get(f"{url}/campaigns")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Campaigns"
    shot("1-list")

    navigate_by_clicking(lambda: driver.find_element(By.ID, "new-campaign"))
    starts = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    ends = (now + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")

    def fill(values: dict[str, str]) -> None:
        for name, value in values.items():
            element = driver.find_element(By.ID, name)
            if element.get_attribute("type") == "datetime-local":
                driver.execute_script("arguments[0].value = arguments[1]", element, value)
            else:
                element.clear()
                element.send_keys(value)

    cid = f"web-{suffix}"
    fill(
        {
            "campaign_id": cid,
            "name": "Browser-made campaign",
            "brand": "Acme",
            "retailer_ids": retailer,
            "starts_at": ends,  # after the end: refused
            "ends_at": starts,
            "targeted_product_ids": product,
            "generosity_pct": "12",
            "budget": "300",
            "win_probability": "0.25",
            "prize_value": "5",
            "control_share": "0.2",
            "creative_title": "Play and win",
            "creative_text": "One order, one play",
            "creative_image_url": "https://shop.test/creative.png",
        }
    )
    Select(driver.find_element(By.ID, "experience_type")).select_by_value("gamified_promotion")
    navigate_by_clicking(lambda: driver.find_element(By.ID, "save"))
    problems = driver.find_element(By.ID, "errors").text
    assert "ends_at must be after starts_at" in problems, problems
    shot("2-form-refused")
    # The form keeps what was typed; fix the period and create it, active.
    assert driver.find_element(By.ID, "name").get_attribute("value") == "Browser-made campaign"
    fill({"starts_at": starts, "ends_at": ends})
    driver.find_element(By.ID, "activate").click()
    navigate_by_clicking(lambda: driver.find_element(By.ID, "save"))
    # A scoped account's id: the one typed, made unique by random digits.
    assert f"/campaigns/{cid}-" in driver.current_url, driver.current_url
    cid = driver.current_url.rsplit("/", 1)[-1]
    assert "active" in driver.find_element(By.CLASS_NAME, "status").text
    audit = driver.find_element(By.ID, "audit").text
    assert f"csm-{suffix}" in audit and "create" in audit
    shot("3-created")

    driver.get(f"{url}/campaigns")
    rows = driver.find_elements(By.CSS_SELECTOR, "#campaigns tbody tr[data-campaign-id]")
    assert [r.get_attribute("data-campaign-id") for r in rows] == [cid]
    navigate_by_clicking(lambda: rows[0].find_element(By.LINK_TEXT, "Report"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Report: Browser-made campaign"
    for chart in ("uplift-chart", "sales-chart", "budget-chart"):
        assert driver.find_element(By.ID, chart).is_displayed()
    missing = driver.find_element(By.ID, "not-available").text
    assert "no held-out shopper" in missing
    report = shot("4-report")
    print(f"\nback office screenshots: {shots}")
    assert report.stat().st_size > 10_000
