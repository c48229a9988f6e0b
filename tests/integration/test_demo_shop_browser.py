"""The demo shop in a real browser: Debian's headless Chromium driven by Selenium walks a
shopper through it, with the tracker installed and the whole stack behind it.

Browse, search, add pasta -> the recommendation (and the tension cart) appear; add up to
the threshold -> the tension cart updates, then unlocks; check out -> the shop's back end
confirms the order with the secret key -> the game invitation appears -> play -> won ->
claim with an e-mail address, which lands in the rewards vault and nowhere in the
shopper's events. Then the page goes offline: its events wait in the tracker's queue and
are each stored once when it is back. A forged shopper signature and a foreign origin are
refused. The campaigns' creatives, in the retailer's default tree only, are shown on the
shopper's personal tree (the widget's markup), and the widget renders on a page that has
nothing but widget.js. Screenshots under .local/artifacts/demo-shop/ (the path is printed),
and each experience's time from the track() call (the click) to its rendering."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

import tests.integration.test_decisions as decisions_tests
from emulators.config import ROOT
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.decisions.bigtable_state import BigtableTrees
from shared.decisions.trees import (
    CampaignCreative,
    ExperienceTree,
    GamifiedPromotion,
    ProductFilter,
    ProductRecommendation,
)
from shared.demo.shop.catalogue import Product, load
from shared.demo.shop.views import STATIC
from shared.retailers.identity import shopper_signature
from shared.rewards.firestore_vault import FirestoreRewardsVault
from shared.system.resources import REWARDS_DATABASE
from tests.integration.test_decisions import put_personal_tree
from tests.integration.test_ingest_api import shopper_rows
from tests.integration.test_rewards import firestore, game
from tests.unit.test_decisions import PASTA, SAUCE, pasta_tree

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / ".local" / "artifacts" / "demo-shop"
WAIT_S = 10  # the longest a shopper waits for something cartwise shows
THRESHOLD = Decimal(20)  # pasta_tree's tension cart ("free delivery")
# In the default tree only (as the compiler puts them): the personal tree holds none.
SAUCE_CREATIVE = CampaignCreative(
    title="Sauce week", text="Our sauces, made for your pasta", image_url="https://img.test/s.png"
)
GAME_CREATIVE = CampaignCreative(title="Play to win your basket", text="One order, one play")
WIDGET_ALONE = """
    const [src, done] = arguments;
    const script = document.createElement('script');
    script.src = src;
    script.onerror = () => done({error: 'widget.js did not load'});
    script.onload = () => {
      const creative = {title: 'T <b>', text: 'x', image_url: 'javascript:alert(1)'};
      const node = window.cartwiseWidget.experienceNode({experience_id: 'e', type: 'tension_cart',
        campaign_id: 'c', details: {threshold: '20', basket_value: '5', missing: '15',
        reward: 'a reward', unlocked: false, creative}});
      done({globals: [typeof window.shop, typeof window.cartwise], html: node.outerHTML});
    };
    document.head.appendChild(script);
"""


def shop_products() -> tuple[Product, Product]:
    """The catalogue's first pasta and first pasta sauce: what the shopper's tree targets."""
    products = load()
    pasta = next(p for p in products if p.category == "DRY NOODLES/PASTA")
    sauce = next(p for p in products if p.category == "PASTA SAUCE")
    return pasta, sauce


def shop_tree(pasta: Product, sauce: Product) -> ExperienceTree:
    """``pasta_tree()`` aimed at the shop's products: its pasta and sauce filters name the
    catalogue's ids, the recommendation is that sauce, and an order qualifies for the game
    with at least 5 of pasta and sauce (the tree's ``min_order_value``)."""
    base = pasta_tree()
    targets = {
        PASTA: ProductFilter(product_ids=frozenset({pasta.product_id})),
        SAUCE: ProductFilter(product_ids=frozenset({sauce.product_id})),
    }

    def aimed(condition: Any) -> Any:
        products = getattr(condition, "products", None)
        if products in targets:
            return condition.model_copy(update={"products": targets[products]})
        return condition

    nodes = {
        node_id: node.model_copy(
            update={
                "transitions": tuple(
                    t.model_copy(update={"when": tuple(aimed(c) for c in t.when)})
                    for t in node.transitions
                )
            }
        )
        for node_id, node in base.nodes.items()
    }
    reco = base.experiences["reco-sauce"]
    play = base.experiences["play"]
    assert isinstance(reco, ProductRecommendation) and isinstance(play, GamifiedPromotion)
    categories = frozenset(c for c in (pasta.category, sauce.category) if c)
    return ExperienceTree.model_validate(
        base.model_copy(
            update={
                "nodes": nodes,
                "experiences": {
                    **base.experiences,
                    "reco-sauce": reco.model_copy(
                        update={"product_id": sauce.product_id, "because_of": pasta.product_id}
                    ),
                    "play": play.model_copy(
                        update={"products": ProductFilter(categories=categories)}
                    ),
                },
            }
        ).model_dump()
    )


class ForeignPage(BaseHTTPRequestHandler):
    """A page of an origin no publishable key lists."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>elsewhere</title><p>another site</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def foreign_origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ForeignPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def stored_event_ids(stack: dict[str, str], shopper: str) -> Counter[str]:
    rows = shopper_rows(stack, stack["DEMO_RETAILER_ID"], shopper)
    return Counter(
        json.loads(r.cells["event"][b"message"][0].value)["event"]["event_id"] for r in rows
    )


def test_a_shopper_walks_through_the_demo_shop(
    stack: dict[str, str],
    browser: object,
    unique: str,
    foreign_origin: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    # Server data goes into the page with textContent only.
    for script in ("shop.js", "widget.js"):
        assert not re.search(
            r"\.(inner|outer)HTML|insertAdjacentHTML|document\.write",
            (STATIC / script).read_text(),
        ), script
    shopper = f"shop-{unique}"
    pasta, sauce = shop_products()
    campaign = game(stack, unique, odds=1.0, prize="5", budget="50")
    # put_personal_tree writes test_decisions' pasta_tree(): here, aimed at the shop.
    monkeypatch.setattr(decisions_tests, "pasta_tree", lambda: shop_tree(pasta, sauce))
    # ... and the creatives of its campaigns in the retailer's default tree only.
    creatives = {"c-sauce": SAUCE_CREATIVE, campaign.campaign_id: GAME_CREATIVE}
    live_at_retailer = decisions_tests.live_at_retailer

    def with_creatives(trees: BigtableTrees, tree: ExperienceTree) -> None:
        assert not tree.creatives()
        rules = {
            c: rule.model_copy(update={"creative": creatives.get(c)})
            for c, rule in tree.campaigns.items()
        }
        live_at_retailer(trees, tree.model_copy(update={"campaigns": rules}))

    monkeypatch.setattr(decisions_tests, "live_at_retailer", with_creatives)
    put_personal_tree(stack, shopper, play_campaign=campaign.campaign_id)
    shots = ARTIFACTS / unique
    shots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        walk(browser, stack, shopper, pasta, sauce, shots, foreign_origin)
    finally:
        FirestoreCampaignStore(firestore(stack)).delete(campaign.campaign_id)
        took = time.monotonic() - started
        print(f"\ndemo shop screenshots: {shots} ({took:.1f}s in the browser)")


def walk(
    driver: Any,
    stack: dict[str, str],
    shopper: str,
    pasta: Product,
    sauce: Product,
    shots: Path,
    foreign_origin: str,
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    count = iter(range(1, 100))

    def shot(name: str) -> None:
        assert driver.save_screenshot(str(shots / f"{next(count):02d}-{name}.png"))

    def until(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
        def probe(_: Any) -> Any:
            try:
                return check()
            except StaleElementReferenceException:
                return None

        try:
            return WebDriverWait(driver, timeout, poll_frequency=0.05).until(probe)
        except TimeoutException as exc:
            shot("timeout")
            errors = driver.execute_script("return window.shop && window.shop.errors")
            order = driver.execute_script("return document.getElementById('order').textContent")
            raise AssertionError(
                f"{what}: not within {timeout}s (tracker errors {errors}; order: {order!r})"
            ) from exc

    def present(css: str) -> Any:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found else None

    def click(css: str) -> None:
        until(lambda: present(css), f"{css} on the page").click()

    def tension() -> tuple[Decimal, bool] | None:
        box = present('#experiences [data-experience-type="tension_cart"]')
        if box is None:
            return None
        return Decimal(box.get_attribute("data-missing")), box.get_attribute("data-unlocked") == (
            "true"
        )

    catalogue = {p.product_id: p for p in load()}
    basket: Counter[str] = Counter()

    def add(css: str) -> Decimal:
        product_id = until(lambda: present(css), css).get_attribute("data-add")
        click(css)
        basket[product_id] += 1
        total = sum((catalogue[p].unit_price * q for p, q in basket.items()), Decimal(0))
        missing = max(THRESHOLD - total, Decimal(0))
        until(lambda: tension() == (missing, missing == 0), f"the tension cart at {missing} more")
        return missing

    # A fresh shopper opens the shop: the back end signs them in.
    driver.get(f"{stack['DEMO_SHOP_URL']}/?shopper={shopper}")
    until(lambda: present('body[data-ready="true"]'), "the shop ready")
    assert shopper in driver.find_element(By.ID, "who").text
    assert "?" not in driver.current_url  # the sign-in parameter is not kept in the URL
    shot("home")

    # Browse a shelf, then search.
    click(f'#shelves button[data-shelf="{pasta.category}"]')
    until(lambda: present(f'#products [data-product-id="{pasta.product_id}"]'), "the shelf")
    assert present(f'#products [data-product-id="{sauce.product_id}"]') is None
    search = driver.find_element(By.ID, "search")
    search.send_keys("pasta")
    click("#search-button")
    until(lambda: present(f'#products [data-product-id="{sauce.product_id}"]'), "the results")
    shot("search")

    # Pasta in the basket: the sauce is recommended, the tension cart appears.
    add(f'#products button[data-add="{pasta.product_id}"]')
    reco = until(
        lambda: present('#experiences [data-experience-type="product_recommendation"]'),
        "the recommendation",
    )
    assert sauce.name in reco.text and pasta.name in reco.text
    # The sauce campaign's creative (the default tree's), above the recommendation.
    title = reco.find_element(By.CSS_SELECTOR, "strong.creative-title")
    assert title.text == SAUCE_CREATIVE.title
    assert reco.find_element(By.CSS_SELECTOR, "p.creative-text").text == SAUCE_CREATIVE.text
    image = reco.find_element(By.CSS_SELECTOR, "img.creative-image")
    assert image.get_attribute("src") == SAUCE_CREATIVE.image_url
    assert image.get_attribute("alt") == SAUCE_CREATIVE.title
    shot("recommendation")

    # The recommended sauce, twice (an order of pasta and sauce from 5 qualifies for the
    # game), then the dearest products up to the threshold: the tension cart follows.
    add('#experiences [data-experience-type="product_recommendation"] button[data-add]')
    assert present('#experiences [data-experience-type="product_recommendation"]') is None
    missing = add(f'#products button[data-add="{sauce.product_id}"]')
    click('#shelves button[data-shelf=""]')
    shot("tension")
    for product in sorted(catalogue.values(), key=lambda p: -p.unit_price):
        if missing == 0:
            break
        missing = add(f'#products button[data-add="{product.product_id}"]')
    assert tension() == (Decimal(0), True)
    assert "free delivery" in present('#experiences [data-experience-type="tension_cart"]').text
    shot("threshold")

    # Check out: the back end confirms the order; the invitation to play appears.
    click("#checkout")
    order = until(lambda: present("#order[data-order-id]"), "the order confirmed")
    order_id = order.get_attribute("data-order-id")
    invitation = until(lambda: present("#game #invitation"), "the game invitation")
    assert order_id in invitation.text
    assert invitation.find_element(By.CSS_SELECTOR, ".creative-title").text == GAME_CREATIVE.title
    assert not invitation.find_elements(By.TAG_NAME, "img")  # the game's creative has none
    shot("invitation")
    click("#play")
    outcome = until(lambda: present('#outcome[data-outcome="won"]'), "the win")
    play_id = outcome.get_attribute("data-play-id")
    email = f"winner.{shopper}@example.com"
    until(lambda: present("#email"), "the claim form").send_keys(email)
    shot("claim")
    click("#claim")
    until(lambda: present('#claim-result[data-claimed="true"]'), "the claim accepted")
    shot("claimed")

    timings = driver.execute_script("return window.shop.timings")
    print("\ntrack() -> rendered (ms), per experience shown:")
    for t in timings:
        print(f"  {t['experience_id']:<12} {t['type']:<24} {t['ms']:>8.1f}  ({t['event_id']})")
    assert {t["type"] for t in timings} >= {
        "product_recommendation",
        "tension_cart",
        "gamified_promotion",
    }

    # The address is in the rewards vault, and in none of the shopper's events.
    vault = FirestoreRewardsVault(firestore(stack, REWARDS_DATABASE))
    assert vault.email_for(play_id) == email
    rows = shopper_rows(stack, stack["DEMO_RETAILER_ID"], shopper)
    assert rows, "the shopper's events are stored"
    assert not [r for r in rows if email.encode() in r.cells["event"][b"message"][0].value]

    # Offline: the shopper goes on; the events wait in the tracker's queue.
    def queued() -> list[dict[str, Any]]:
        raw = driver.execute_script("return localStorage.getItem('cartwise.queue')")
        return [item["e"] for item in (json.loads(raw)["items"] if raw else [])]

    until(lambda: not queued(), "the queue empty before going offline")
    driver.set_network_conditions(
        offline=True, latency=0, download_throughput=-1, upload_throughput=-1
    )
    try:
        search = driver.find_element(By.ID, "search")
        search.clear()
        search.send_keys("cheese")
        click("#search-button")
        cheese = next(p for p in catalogue.values() if p.category == "CHEESE")
        click(f'#products button[data-add="{cheese.product_id}"]')
        click(f'#basket-lines button[data-remove="{cheese.product_id}"]')
        time.sleep(2)  # the tracker tries, and keeps them
        waiting = queued()
        shot("offline")
    finally:
        driver.delete_network_conditions()
    kinds = Counter(e["type"] for e in waiting)
    assert kinds["search_performed"] >= 1, kinds
    assert kinds["product_added_to_basket"] >= 1 and kinds["product_removed_from_basket"] >= 1
    offline_ids = {e["event_id"] for e in waiting}
    until(lambda: not queued(), "the queue flushed once online", timeout=60)
    stored = stored_event_ids(stack, shopper)
    assert {i: stored[i] for i in offline_ids} == dict.fromkeys(offline_ids, 1)
    assert not [i for i, n in stored.items() if n != 1]

    # A forged shopper signature is refused; the true one is read (not vacuous).
    fetch_experiences = """
        const [url, key, shopper, signature, done] = arguments;
        fetch(url + '/v1/experiences', {
          headers: {'X-Api-Key': key, 'X-Shopper-Id': shopper, 'X-Shopper-Signature': signature},
          credentials: 'omit',
        }).then(async (r) => done({status: r.status, body: await r.json().catch(() => null)}))
          .catch((e) => done({error: e.name + ': ' + e.message}));
    """
    driver.set_script_timeout(WAIT_S)
    args = (stack["EXPERIENCES_URL"], stack["DEMO_PUBLISHABLE_KEY"], shopper)
    signature = shopper_signature(stack["DEMO_IDENTITY_SECRET"], shopper)
    forged = driver.execute_async_script(fetch_experiences, *args, "0" * 64)
    assert forged["status"] == 403, forged
    assert forged["body"]["error"]["code"] == "shopper_signature_invalid"
    assert driver.execute_async_script(fetch_experiences, *args, signature)["status"] == 200

    # From a foreign origin the publishable key is useless: the preflight gets no CORS
    # headers, so the browser rejects the fetch.
    driver.get(foreign_origin)
    refused = driver.execute_async_script(fetch_experiences, *args, signature)
    assert refused.get("error", "").startswith("TypeError"), refused
    # The widget alone on a page (as the back office's preview will load it): no global of
    # the shop's, server data as text, no javascript: image.
    alone = driver.execute_async_script(WIDGET_ALONE, f"{stack['DEMO_SHOP_URL']}/static/widget.js")
    assert alone.get("globals") == ["undefined", "undefined"], alone
    assert "<img" not in alone["html"] and "T &lt;b&gt;" in alone["html"], alone
    assert "Add 15.00 € more to get a reward" in alone["html"], alone
    preflight = requests.options(
        f"{stack['EXPERIENCES_URL']}/v1/experiences",
        headers={"Origin": foreign_origin, "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    shot("foreign-origin")
