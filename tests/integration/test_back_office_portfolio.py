"""A CSM's morning with a real portfolio, in real headless Chromium (Selenium) on the local
stack: 500+ campaigns created through the API, then the portfolio page and its alerts, the
list's filters, sorting, paging and URL state (the back button), a bulk pause (audited),
a duplicate for another retailer, targeting picked from the catalogue, the preview of a
creative with the demo shop's widget, and the CSV exports. Every page is scanned with
axe-core (no serious or critical violation). Screenshots: .local/artifacts/back-office/.

What the pages must show is computed here from the campaigns the test created, not read
from the code under test."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from emulators.config import ROOT
from shared.campaigns.admin import issue_csm_key
from shared.campaigns.firestore_admin import FirestoreCsmAccounts
from shared.platform import clients
from shared.rewards.firestore_plays import FirestoreBudgetFlags
from shared.system.resources import CREDENTIALS_DATABASE
from tests.integration.accessibility import describe, violations
from tests.integration.browsing import navigate_by_clicking
from tests.integration.campaign_cleanup import remove

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / ".local" / "artifacts" / "back-office"
CAMPAIGNS = 520
BRANDS = ("Acme", "Bolt", "Cerise", "Dune", "Epi", "Fjord", "Gala", "Hive")
TYPES = ("personalized_promotion", "tension_cart", "product_recommendation")
TIMEOUT = 60


def _campaign(i: int, retailers: list[str], suffix: str, now: datetime) -> dict[str, Any]:
    """The i-th campaign: retailer, brand, type and status cycle; each targets its own
    brand (so that none conflicts with another)."""
    return {
        "campaign_id": f"p{i:03}",
        "name": f"Portfolio {i:03} {BRANDS[i % len(BRANDS)]}",
        "brand": BRANDS[i % len(BRANDS)],
        "retailer_ids": [retailers[i % len(retailers)]],
        "experience_type": TYPES[i % len(TYPES)],
        "status": "active" if i % 5 else "draft",
        "starts_at": (now - timedelta(days=1 + i % 3)).isoformat(),
        "ends_at": (now + timedelta(days=10 + i % 20)).isoformat(),
        "targeted_brands": [f"brand-{suffix}-{i:03}"],
        "threshold": "10",
        "reward": "a gift",
        "control_share": 0.1,
    }


def _seed(stack: dict[str, str], suffix: str, retailers: list[str], now: datetime) -> None:
    """Products and brands the catalogue knows at every retailer (page views, baskets)."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    bq = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    rows = []
    for i, retailer in ((i, r) for r in retailers for i in range(CAMPAIGNS)):
        rows.append(
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
                "product_id": f"pick-{suffix}-{i:03}",
                "category": None,
            }
        )
    assert bq.insert_rows_json(f"{project}.cartwise.page_views", rows, timeout=TIMEOUT) == []
    basket = [
        {
            "row_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "retailer_id": retailer,
            "shopper_id": "s1",
            "session_id": None,
            "occurred_at": now.isoformat(),
            "ingested_at": now.isoformat(),
            "product_id": f"pick-{suffix}-{i:03}",
            "brand": f"brand-{suffix}-{i:03}" if i < CAMPAIGNS else "Kellogg's",
            "category": "dairy",
            "change": "added",
            "quantity": 1,
            "unit_price": "1.5",
            "amount": "1.5",
        }
        for retailer in retailers
        for i in range(CAMPAIGNS + 1)
    ]
    assert bq.insert_rows_json(f"{project}.cartwise.basket_changes", basket, timeout=TIMEOUT) == []


def _create_all(url: str, key: str, bodies: list[dict[str, Any]]) -> list[str]:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}"}

    def create(body: dict[str, Any]) -> str:
        for attempt in range(3):
            answer = session.post(
                f"{url}/v1/campaigns", json=body, headers=headers, timeout=TIMEOUT
            )
            if answer.status_code != 503 or attempt == 2:
                break
            time.sleep(1)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["campaign_id"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(create, bodies))


def test_a_csm_runs_a_portfolio_of_500_campaigns(stack: dict[str, str], browser: object) -> None:
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    suffix = uuid.uuid4().hex[:8]
    # A CSM's portfolio spans retailers: the campaigns are spread over eight of them.
    retailers = [f"pf{k}-{suffix}" for k in range(8)]
    retailer, other = retailers[0], f"pfx-{suffix}"
    project = stack["GOOGLE_CLOUD_PROJECT"]
    url = stack["CAMPAIGNS_URL"]
    firestore = clients.firestore_client(project)
    for r in (*retailers, other):
        firestore.collection("retailers").document(r).set({"name": r})
    now = datetime.now(UTC).replace(microsecond=0)
    credentials = clients.firestore_client(project, CREDENTIALS_DATABASE)
    key = issue_csm_key(
        FirestoreCsmAccounts(credentials), f"csm-{suffix}", "csm", [*retailers, other], now
    )
    created: list[str] = []
    try:
        _seed(stack, suffix, [*retailers, other], now)
        clock = time.perf_counter()
        bodies = [_campaign(i, retailers, suffix, now) for i in range(CAMPAIGNS)]
        created = _create_all(url, key, bodies)
        print(
            f"\n{CAMPAIGNS} campaigns created through the API "
            f"in {time.perf_counter() - clock:.1f} s"
        )
        game = _create_all(
            url,
            key,
            [
                {
                    "campaign_id": "game",
                    "name": f"Budget game {suffix}",
                    "brand": "Acme",
                    "retailer_ids": [retailer],
                    "experience_type": "gamified_promotion",
                    "status": "active",
                    "starts_at": (now - timedelta(days=1)).isoformat(),
                    "ends_at": (now + timedelta(days=9)).isoformat(),
                    "targeted_brands": [f"brand-{suffix}-000"],
                    "win_probability": 0.5,
                    "prize_value": "5",
                    "budget": "50",
                    "creative": {
                        "title": "Play and win your basket",
                        "text": "One order, one game",
                        "image_url": "https://shop.test/game.png",
                    },
                }
            ],
        )[0]
        created.append(game)
        by_id = dict(zip(created, [*bodies, None], strict=True))
        # The payout ledger's adapter marks the game's budget exhausted (as a won play would).
        FirestoreBudgetFlags(firestore).set_exhausted(game, True)
        refreshed = requests.post(stack["CAMPAIGN_STATS_URL"], timeout=300)
        assert refreshed.status_code == 200, refreshed.text
        run_in_browser(browser, url, suffix, retailer, other, key, created, by_id, game)
    finally:
        remove(stack, campaign_ids=created, keys=[key], retailers=[*retailers, other])


def run_in_browser(
    driver: Any,
    url: str,
    suffix: str,
    retailer: str,
    other: str,
    key: str,
    created: list[str],
    by_id: dict[str, dict[str, Any] | None],
    game: str,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    shots = ARTIFACTS / f"portfolio-{suffix}"
    shots.mkdir(parents=True, exist_ok=True)
    scanned: dict[str, int] = {}

    def check(name: str) -> Path:
        """Screenshot, and axe-core: no serious or critical violation on the page."""
        path = shots / f"{name}.png"
        assert driver.save_screenshot(str(path))
        found = violations(driver)
        assert not found, describe(found, driver.current_url)
        scanned[name] = len(found)
        return path

    def go(path: str) -> None:
        driver.get(f"{url}{path}")
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def submit(find: Callable[[], Any]) -> None:
        navigate_by_clicking(driver, find)

    def rows() -> list[Any]:
        return list(driver.find_elements(By.CSS_SELECTOR, "#campaigns tbody tr[data-campaign-id]"))

    def shown_ids() -> list[str]:
        return [r.get_attribute("data-campaign-id") for r in rows()]

    def fetch_text(path: str) -> tuple[int, str, str]:
        result: dict[str, Any] = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {credentials: 'same-origin'}).then(async r => done("
            "{status: r.status, type: r.headers.get('content-type'), text: await r.text()}))"
            ".catch(e => done({status: 0, type: '', text: String(e)}));",
            path,
        )
        return int(result["status"]), str(result["type"]), str(result["text"])

    driver.set_script_timeout(60)
    go("/login")
    check("0-login")
    driver.find_element(By.ID, "key").send_keys(key)
    submit(lambda: driver.find_element(By.ID, "login"))
    # The landing page is the portfolio, with the exhausted game's alert linking to it.
    assert urlparse(driver.current_url).path == "/portfolio"
    alert = driver.find_element(
        By.CSS_SELECTOR, f'tr[data-alert="budget_exhausted"][data-campaign-id="{game}"]'
    )
    assert (
        alert.find_element(By.TAG_NAME, "a")
        .get_attribute("href")
        .endswith(f"/campaigns/{game}/report")
    )
    live = sum(1 for b in by_id.values() if b is None or b["status"] == "active")
    figures = driver.find_element(By.ID, "portfolio-figures").text
    assert f"Live now\n{live}" in figures, figures
    check("1-portfolio")

    # The list: every campaign, 50 a page.
    go("/campaigns")
    caption = driver.find_element(By.CSS_SELECTOR, "#campaigns caption").text
    total = len(created)
    assert caption.startswith(f"{total} campaigns"), caption
    assert len(rows()) == 50
    check("2-list")

    # Filters through the form: brand Bolt, active, 25 a page.
    Select(driver.find_element(By.ID, "f-brand")).select_by_value("Bolt")
    Select(driver.find_element(By.ID, "f-status")).select_by_value("active")
    Select(driver.find_element(By.ID, "f-per-page")).select_by_value("25")
    submit(lambda: driver.find_element(By.ID, "apply-filters"))
    state = parse_qs(urlparse(driver.current_url).query)
    assert state["brand"] == ["Bolt"] and state["status"] == ["active"], driver.current_url
    expected = sorted(
        (cid for cid, b in by_id.items() if b is not None and b["brand"] == "Bolt"
         and b["status"] == "active"),
        key=lambda cid: str((by_id[cid] or {})["name"]).casefold(),
    )  # fmt: skip
    assert len(expected) > 25  # more than one page
    # Sorted by name, ascending: click the column's header (twice: desc, then asc).
    submit(lambda: driver.find_element(By.CSS_SELECTOR, 'th a[data-sort="name"]'))
    if parse_qs(urlparse(driver.current_url).query).get("order") != ["asc"]:
        submit(lambda: driver.find_element(By.CSS_SELECTOR, 'th a[data-sort="name"]'))
    first_page = shown_ids()
    assert first_page == expected[:25]
    first_url = driver.current_url
    check("3-list-filtered")
    submit(lambda: driver.find_element(By.ID, "next-page"))
    assert shown_ids() == expected[25:50]
    assert parse_qs(urlparse(driver.current_url).query)["page"] == ["2"]
    # The back button: the first page of the same filters, from the URL alone.
    driver.back()
    WebDriverWait(driver, 30).until(lambda d: d.current_url == first_url)
    assert shown_ids() == first_page
    # Search by id; a retailer's campaigns (the URL alone sets the filters).
    go("/campaigns?q=" + created[7])
    assert shown_ids() == [created[7]]
    third = f"pf3-{suffix}"
    go(f"/campaigns?retailer={third}&per_page=100")
    mine = {cid for cid, b in by_id.items() if b is not None and b["retailer_ids"] == [third]}
    assert set(shown_ids()) == mine and len(mine) == CAMPAIGNS // 8
    go("/campaigns?experience=tension_cart&brand=Bolt&per_page=100")
    carts = {
        cid
        for cid, b in by_id.items()
        if b is not None and b["experience_type"] == "tension_cart" and b["brand"] == "Bolt"
    }
    assert set(shown_ids()) == carts and carts

    # Bulk pause from the filtered list: three ticked, each audited.
    driver.get(first_url)
    ticked = first_page[:3]
    for cid in ticked:
        driver.find_element(
            By.CSS_SELECTOR, f'tr[data-campaign-id="{cid}"] input[type=checkbox]'
        ).click()
    Select(driver.find_element(By.ID, "bulk-action")).select_by_value("pause")
    submit(lambda: driver.find_element(By.ID, "bulk-apply"))
    assert driver.find_element(By.ID, "bulk-result").text.startswith("Paused 3 campaign(s)")
    check("4-bulk-paused")
    headers = {"Authorization": f"Bearer {key}"}
    for cid in ticked:
        campaign = requests.get(f"{url}/v1/campaigns/{cid}", headers=headers, timeout=TIMEOUT)
        assert campaign.json()["status"] == "paused"
        audit = requests.get(f"{url}/v1/campaigns/{cid}/audit", headers=headers, timeout=TIMEOUT)
        last = audit.json()["audit"][-1]
        assert (last["action"], last["csm_id"]) == ("pause", f"csm-{suffix}")
        assert last["changes"]["status"] == {"before": "active", "after": "paused"}
    submit(lambda: driver.find_element(By.ID, "back-to-list"))
    assert driver.current_url == first_url  # back to the same filters
    assert [c for c in shown_ids() if c in ticked] == []  # paused: no longer "active"

    # Duplicate one for the other retailer: a new id, a draft, the chosen retailer.
    source = expected[5]
    go(f"/campaigns/{source}/duplicate")
    assert driver.find_element(By.ID, "name").get_attribute("value").endswith("(copy)")
    field = driver.find_element(By.ID, "retailer_ids")
    field.clear()
    field.send_keys(other)
    check("5-duplicate")
    submit(lambda: driver.find_element(By.ID, "save"))
    copy_id = urlparse(driver.current_url).path.rsplit("/", 1)[-1]
    created.append(copy_id)
    copy = requests.get(f"{url}/v1/campaigns/{copy_id}", headers=headers, timeout=TIMEOUT).json()
    original = by_id[source] or {}
    assert copy_id != source and copy["status"] == "draft" and copy["retailer_ids"] == [other]
    assert copy["targeted_brands"] == original["targeted_brands"]
    assert copy["experience_type"] == original["experience_type"]

    # Targeting picked from the catalogue: search, page, pick.
    go("/campaigns/new")
    driver.find_element(By.ID, "retailer_ids").send_keys(retailer)
    search = driver.find_element(By.ID, "targeted_product_ids-search")
    search.send_keys(f"pick-{suffix}-01")
    WebDriverWait(driver, 60).until(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, "#targeted_product_ids-results button")) >= 10
        )
    )
    found = [
        b.get_attribute("data-value")
        for b in driver.find_elements(By.CSS_SELECTOR, "#targeted_product_ids-results button")
    ]
    assert sorted(found) == [f"pick-{suffix}-01{d}" for d in range(10)], found
    driver.find_element(By.CSS_SELECTOR, f'button[data-value="pick-{suffix}-013"]').click()
    driver.find_element(By.CSS_SELECTOR, f'button[data-value="pick-{suffix}-017"]').click()
    assert driver.find_element(By.ID, "targeted_product_ids").get_attribute("value") == (
        f"pick-{suffix}-013, pick-{suffix}-017"
    )
    brands = driver.find_element(By.ID, "targeted_brands-search")
    brands.send_keys(f"brand-{suffix}-")
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.ID, "targeted_brands-more").is_displayed()
    )
    check("6-pickers")
    # A misspelt brand is refused with the nearest known one suggested.
    for name, value in {
        "name": "Picked from the catalogue",
        "targeted_brands": "Kelogs",
        "creative_title": "Crunchy week",
    }.items():
        element = driver.find_element(By.ID, name)
        element.clear()
        element.send_keys(value)
    for name, value in {
        "starts_at": (datetime.now(UTC) + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (datetime.now(UTC) + timedelta(days=50)).strftime("%Y-%m-%dT%H:%M"),
    }.items():
        driver.execute_script(
            "arguments[0].value = arguments[1]", driver.find_element(By.ID, name), value
        )
    submit(lambda: driver.find_element(By.ID, "save"))
    problems = driver.find_element(By.ID, "errors").text
    assert "Kelogs (did you mean Kellogg's?)" in problems, problems
    check("7-misspelt-brand")

    # The preview: the game's creative through the demo shop's widget.
    go(f"/campaigns/{game}/preview")
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-preview-ready")
    )
    node = driver.find_element(By.CSS_SELECTOR, ".slot .experience[data-experience-type]")
    assert node.find_element(By.TAG_NAME, "strong").text == "Play and win your basket"
    image = node.find_element(By.TAG_NAME, "img")
    assert image.get_attribute("src") == "https://shop.test/game.png"
    assert image.get_attribute("alt") == "Play and win your basket"
    assert "One order, one game" in node.text
    check("8-preview")
    promotion = next(cid for cid, b in by_id.items() if b and b["status"] == "active"
                     and b["experience_type"] == "personalized_promotion")  # fmt: skip
    go(f"/campaigns/{promotion}/preview")
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-preview-ready")
    )
    types = [
        e.get_attribute("data-experience-type")
        for e in driver.find_elements(By.CSS_SELECTOR, ".slot .experience")
    ]
    assert types.count("personalized_promotion") == 2 and "tension_cart" in types, types

    # The report and its CSV export; the list's CSV with the filters of the page.
    go(f"/campaigns/{promotion}/report")
    check("9-report")
    status, kind, text = fetch_text(f"/campaigns/{promotion}/report.csv")
    assert status == 200 and kind.startswith("text/csv"), (status, kind)
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["section", "metric", "value"]
    assert ["campaign", "campaign_id", promotion] in lines
    status, kind, text = fetch_text("/campaigns.csv?brand=Bolt&status=paused")
    listed = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["campaign_id"] for r in listed) == sorted(ticked)
    go(f"/campaigns/{ticked[0]}")
    check("10-edit")
    print(f"\nportfolio screenshots: {shots}; axe scans: {json.dumps(scanned)}")
