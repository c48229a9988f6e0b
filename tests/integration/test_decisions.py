"""A shopper's session through the ingest API moves them along their tree; the tracker
reads each step's experiences from the experiences endpoint; redeliveries change nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from emulators.config import StackSettings
from shared.contract.events import validate_event
from shared.decisions.bigtable_state import BigtableTrees
from shared.decisions.play_tokens import verify
from shared.ingestion.pubsub_publisher import PubSubEventPublisher
from shared.ingestion.service import make_record, message_head
from shared.platform import clients
from shared.system.resources import BIGTABLE_INSTANCE, SHOPPER_EVENTS_TOPIC
from tests.factories import event
from tests.integration.test_freezer import query
from tests.integration.test_ingest_api import post
from tests.unit.test_decisions import pasta_tree

pytestmark = pytest.mark.integration


def experiences(stack: dict[str, str], shopper: str, key: str | None = None) -> requests.Response:
    return requests.get(
        f"{stack['EXPERIENCES_URL']}/v1/shoppers/{shopper}/experiences",
        headers={"X-Api-Key": key or stack["DEMO_API_KEY"]},
        timeout=10,
    )


def wait_for_answer(stack: dict[str, str], shopper: str, event_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = experiences(stack, shopper)
        if response.status_code == 200 and response.json()["event_id"] == event_id:
            return dict(response.json())
        time.sleep(0.05)
    raise AssertionError(f"no answer to {event_id}: {response.status_code} {response.text}")


def redeliver(stack: dict[str, str], raw: dict[str, Any]) -> None:
    """The same event on the topic again, as an at-least-once delivery may bring it."""
    retailer = stack["DEMO_RETAILER_ID"]
    parsed = validate_event(raw)
    assert not isinstance(parsed, list)
    record = make_record(retailer, parsed, message_head(retailer, datetime.now(UTC)))
    project = stack["GOOGLE_CLOUD_PROJECT"]
    publisher = PubSubEventPublisher(
        clients.publisher_api(), clients.topic_path(project, SHOPPER_EVENTS_TOPIC)
    )
    publisher.publish([record])


def test_a_session_moves_along_the_tree_step_by_step(
    stack: dict[str, str], stack_settings: StackSettings, unique: str
) -> None:
    retailer = stack["DEMO_RETAILER_ID"]
    shopper = f"decide-{unique}"
    now = datetime.now(UTC)
    tree = pasta_tree().model_copy(
        update={
            "retailer_id": retailer,
            "shopper_id": shopper,
            "compiled_at": now - timedelta(minutes=1),
            "valid_until": now + timedelta(days=1),
            "campaigns": {
                cid: rule.model_copy(
                    update={
                        "retailer_ids": frozenset({retailer}),
                        "starts_at": now - timedelta(days=1),
                        "ends_at": now + timedelta(days=1),
                    }
                )
                for cid, rule in pasta_tree().campaigns.items()
            },
        }
    )
    trees = BigtableTrees(clients.bigtable_client(stack["GOOGLE_CLOUD_PROJECT"]), BIGTABLE_INSTANCE)
    trees.put([tree])
    assert experiences(stack, shopper).status_code == 404

    start = now - timedelta(minutes=4)

    def step(kind: str, seconds: int, **payload: Any) -> dict[str, Any]:
        raw = event(kind, shopper, start + timedelta(seconds=seconds))
        raw["payload"] = payload
        assert post(stack, [raw]).json()["accepted"] == 1
        return wait_for_answer(stack, shopper, raw["event_id"]) | {"_raw": raw}

    def names(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {e["experience_id"]: e["details"] for e in answer["experiences"]}

    pasta = {"product_id": "pasta-1", "quantity": 2, "unit_price": "1.50", "brand": "B"}
    sauce = {"product_id": "sauce-1", "quantity": 1, "unit_price": "3.00", "brand": "B"}
    added = step("product_added_to_basket", 10, **pasta)
    assert added["node_id"] == "pasta"
    assert names(added)["reco-sauce"]["product_id"] == "sauce-1"
    assert names(added)["tension"]["missing"] == "17"
    removed = step("product_removed_from_basket", 20, **pasta)
    assert (removed["node_id"], removed["experiences"]) == ("root", [])
    again = step("product_added_to_basket", 30, **pasta)
    assert again["node_id"] == "pasta"
    with_sauce = step("product_added_to_basket", 40, **sauce)
    assert with_sauce["node_id"] == "pasta_sauce"
    assert names(with_sauce)["tension"]["missing"] == "14"
    redeliver(stack, with_sauce["_raw"])  # must not add the sauce twice
    looked = step("page_viewed", 45, url="/basket", page_type="basket")
    assert looked["node_id"] == "pasta_sauce"
    assert names(looked)["tension"]["missing"] == "14"
    order = {
        "order_id": f"o-{unique}",
        "total": "6.00",
        "lines": [pasta, sauce],
    }
    paid = step("cart_validated", 50, **order)
    invitation = names(paid)["play"]
    key = (stack_settings.local_dir / "play-signing-key").read_text().strip().encode()
    grant = verify(invitation["play_token"], key, datetime.now(UTC))
    assert (grant.order_id, grant.shopper_id, grant.retailer_id) == (
        order["order_id"],
        shopper,
        retailer,
    )
    assert names(paid)["tension"]["missing"] == "20"

    # The tracker's retry of a whole step is refused as a duplicate by ingest itself.
    assert post(stack, [with_sauce["_raw"]]).json()["duplicate_count"] == 1

    # Every decision is frozen into BigQuery, once, with each experience's outcome.
    deadline = time.monotonic() + 60
    frozen: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(frozen) < 6:
        frozen = query(
            stack,
            f"SELECT row_id, node_id, shown_count FROM `{stack['GOOGLE_CLOUD_PROJECT']}"
            ".cartwise.decisions` WHERE shopper_id = @s ORDER BY occurred_at",
            s=shopper,
        )
        time.sleep(0.5)
    assert [r["node_id"] for r in frozen] == [
        "pasta",
        "root",
        "pasta",
        "pasta_sauce",
        "pasta_sauce",
        "pasta_sauce",
    ]
    outcomes = query(
        stack,
        f"SELECT experience_id, outcome FROM `{stack['GOOGLE_CLOUD_PROJECT']}"
        ".cartwise.decision_experiences` WHERE event_id = @e",
        e=paid["_raw"]["event_id"],
    )
    assert sorted((r["experience_id"], r["outcome"]) for r in outcomes) == [
        ("play", "shown"),
        ("tension", "shown"),
    ]

    # Another retailer's key does not see this shopper.
    assert experiences(stack, shopper, "cwk_unknown").status_code == 401


def test_campaigns_compile_into_the_default_tree_and_other_retailers_see_nothing(
    stack: dict[str, str], unique: str, retailer_key: Callable[[str], str]
) -> None:
    from shared import cli
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.campaigns.model import Campaign

    retailer = stack["DEMO_RETAILER_ID"]
    brand = f"BRAND-{unique}"
    now = datetime.now(UTC)
    firestore = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"])
    campaigns = FirestoreCampaignStore(firestore)
    campaigns.put(
        Campaign(
            campaign_id=f"c-{unique}",
            name="pasta week",
            retailer_ids=[retailer],
            experience_type="personalized_promotion",
            status="active",
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=7),
            targeted_brands=[brand],
            threshold=Decimal(10),
            control_share=0.0,
        )
    )
    try:
        assert cli.main(["compile-trees"]) == 0
        shopper = f"default-{unique}"
        deadline = time.monotonic() + 45
        answer: dict[str, Any] = {}
        sent: list[str] = []
        while time.monotonic() < deadline:  # the decider re-reads default trees every 10 s
            raw = event("product_added_to_basket", shopper)
            raw["payload"] = {"product_id": "p-1", "quantity": 3, "unit_price": "2", "brand": brand}
            assert post(stack, [raw]).json()["accepted"] == 1
            sent.append(raw["event_id"])
            time.sleep(1)
            response = experiences(stack, shopper)
            if response.status_code == 200 and response.json()["experiences"]:
                answer = response.json()
                break
        shown = {e["experience_id"]: e["details"] for e in answer["experiences"]}
        assert answer["node_id"] == f"c-{unique}"
        # Adds made before the tree was read still filled the basket: 3 x 2 each.
        value = 6 * (sent.index(answer["event_id"]) + 1)
        assert shown[f"c-{unique}:tension"]["basket_value"] == str(value)
        assert shown[f"c-{unique}:tension"]["missing"] == str(max(0, 10 - value))
        assert shown[f"c-{unique}:promotion"]["generosity_pct"] == "10"

        other = retailer_key(f"other-{unique}")
        assert experiences(stack, shopper, other).status_code == 404
    finally:
        campaigns.put(
            campaigns.get(f"c-{unique}").model_copy(update={"status": "archived"})  # type: ignore[union-attr]
        )
        assert cli.main(["compile-trees", "--retailer", retailer]) == 0  # now without it
