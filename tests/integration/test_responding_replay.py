"""Shoppers who respond, through the real stack: the report measures what they were made to do.

A personalized promotion of the test's own (half its shoppers held out) and 40 shoppers
with the same basket; the responding replay sends their sessions through the Shopper
Event API, asks the experiences API at each decision point, and the response model (every
effect certain here) makes each shopper shown the promotion click it and add one more
unit. Held-out shoppers send their sessions untouched. The campaign report's own uplift,
read from the read models once the freezers and the compaction have caught up, is then
exactly the injected effect (every basket is the same: no noise).
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.campaigns.model import Campaign
from shared.campaigns.report import measured_uplifts
from shared.decisions.commands import compile_trees_command
from shared.decisions.trees import in_control_group
from shared.freezer.read_models import DATASET
from shared.journey.http_event_api import HttpEventApi
from shared.journey.replay import Answer
from shared.journey.replay_keys import replay_api_keys
from shared.journey.responding import HttpExperiencesApi, RespondingReplay
from shared.journey.response import ResponseModel
from shared.journey.tracker_simulator import Session
from shared.platform import clients
from shared.platform.bigquery_warehouse import BigQueryWarehouse

pytestmark = pytest.mark.integration

RETAILER = "freshmart"
SHOPPERS = 40


class Recording:
    """The Shopper Event API, with every request it was sent kept."""

    def __init__(self, inner: HttpEventApi) -> None:
        self.inner = inner
        self.sent: list[dict[str, Any]] = []

    def post(self, retailer_id: str, events: list[dict[str, Any]]) -> Answer:
        self.sent += events
        return self.inner.post(retailer_id, events)


def _session(n: int, shopper: str, product: str, start: datetime) -> Session:
    at = iter(start + timedelta(seconds=30 * i) for i in range(10))
    targeted = {"product_id": product, "quantity": 1, "unit_price": "2.00"}
    other = {"product_id": f"{product}-other", "quantity": 1, "unit_price": "1.00"}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("page_viewed", {"url": "https://shop.example/", "page_type": "home"}),
        ("product_added_to_basket", targeted),
        ("product_added_to_basket", other),
        ("page_viewed", {"url": "https://shop.example/basket", "page_type": "basket"}),
        (
            "cart_validated",
            {"order_id": f"o-{shopper}", "lines": [targeted, other], "total": "3.00"},
        ),
    ]
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "shopper_id": shopper,
            "session_id": f"s-{shopper}",
            "occurred_at": next(at).isoformat(),
            "schema_version": 1,
            "payload": payload,
        }
        for kind, payload in steps
    ]
    return Session(RETAILER, n, events)


def test_the_report_measures_the_injected_effect(stack: dict[str, str]) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    tag = f"{random.getrandbits(24):06x}"
    product = f"p-resp-{tag}"
    now = datetime.now(UTC)
    campaign = Campaign(
        campaign_id=f"test-resp-{tag}",
        name="responding test",
        retailer_ids=[RETAILER],
        experience_type="personalized_promotion",
        status="active",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
        targeted_product_ids=[product],
        threshold=Decimal(10),
        control_share=0.5,
    )
    FirestoreCampaignStore(clients.firestore_client(project)).put(campaign)
    assert compile_trees_command(argparse.Namespace(retailer=[RETAILER])) == 0

    shoppers = [f"resp-{tag}-{n}" for n in range(SHOPPERS)]
    held = {s for s in shoppers if in_control_group(campaign.campaign_id, RETAILER, s, 0.5)}
    assert 0 < len(held) < SHOPPERS
    keys = replay_api_keys(stack, (RETAILER,))
    events = Recording(HttpEventApi(stack["INGEST_URL"], keys))
    certain = ResponseModel(seed=1, click=1.0, promo_add=1.0, promo_add_within_reach=1.0)
    replay = RespondingReplay(events, HttpExperiencesApi(stack["EXPERIENCES_URL"], keys), certain)
    start = now - timedelta(minutes=30)
    originals = [_session(n, s, product, start) for n, s in enumerate(shoppers)]
    summary = replay.run(originals, concurrency=8)
    assert summary.failed_events == 0 and summary.rejected == 0, summary.as_dict()

    # The tracker saw the promotion shown to every shopper but the held-out ones, and only
    # them influenced: a held-out shopper's events went out exactly as replayed.
    truth = replay.truth.as_dict()["campaigns"][campaign.campaign_id]
    assert truth["exposed_shoppers"] == SHOPPERS - len(held)
    # (the campaign's promotion and its companion tension cart are displayed, and clicked;
    # the tension cart is not within reach: one addition, the promotion's)
    assert truth["clicked"] == truth["displayed"] >= SHOPPERS - len(held)
    assert truth["additions"] == SHOPPERS - len(held)
    assert truth["targeted_sales"] == truth["basket_value"] == 2.0
    for session in originals:
        shopper = session.events[0]["shopper_id"]
        sent = [e for e in events.sent if e["shopper_id"] == shopper]
        order = next(e for e in sent if e["type"] == "cart_validated")
        if shopper in held:
            assert sent == session.events
        else:
            kinds = [e["type"] for e in sent]
            assert kinds.count("experience_displayed") >= 1
            assert kinds.count("experience_clicked") == kinds.count("experience_displayed")
            assert order["payload"]["total"] == "5.00"

    # The campaign report's own uplift, from the read models: exactly the injected +2.00.
    warehouse = BigQueryWarehouse(
        clients.bigquery_client(project, stack.get("BIGQUERY_EMULATOR_HOST")), project, DATASET, ()
    )
    deadline = time.monotonic() + 120
    while True:
        measured = measured_uplifts(campaign, warehouse, project, DATASET, datetime.now(UTC))
        sales, basket = measured["targeted_sales"], measured["basket_value"]
        # The read models fill in compaction passes, table by table: the shoppers can all
        # be in `orders` while some of their lines are still landing in `sold_products`.
        # Freshness is the contract (docs/FREEZER.md): the report is read until it shows the
        # injected effect or the deadline passes; the asserts below decide.
        if (
            sales["exposed"]["shoppers"] + sales["held_out"]["shoppers"] == SHOPPERS
            and basket["exposed"]["shoppers"] + basket["held_out"]["shoppers"] == SHOPPERS
            and sales["difference"] == pytest.approx(2.0)
            and basket["difference"] == pytest.approx(2.0)
        ) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sales["held_out"]["shoppers"] == len(held), measured
    assert sales["difference"] == pytest.approx(2.0) and sales["ci95"] == pytest.approx([2, 2])
    assert basket["difference"] == pytest.approx(2.0)
