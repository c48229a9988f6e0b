"""The Complete Journey's campaigns become cartwise campaigns; what happened stays beside."""

from __future__ import annotations

import json

import pytest

from shared import cli
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.journey import dataset as journey
from shared.journey.tracker_simulator import Simulation
from shared.platform import clients
from tests.integration.test_freezer import query

pytestmark = pytest.mark.integration


def customers_of(simulation: Simulation) -> dict[int, set[str]]:
    """Each household's retailers: those of the stores it bought at (docs/REPLAY.md)."""
    lines = journey.read("transactions", ["household_id", "store_id"]).to_pylist()
    stores: dict[int, str] = {}
    found: dict[int, set[str]] = {}
    for line in lines:
        store = line["store_id"]
        if store not in stores:
            stores[store] = simulation.retailer_of(store)
        found.setdefault(line["household_id"], set()).add(stores[store])
    return found


def reached_pairs(campaign: int | None = None) -> set[tuple[str, str, str]]:
    """(campaign, retailer, shopper): a household reached by a campaign is reached at
    every retailer it is a customer of."""
    customers = customers_of(Simulation(shift_weeks=455))
    return {
        (f"cj-{h['campaign_id']}", retailer, f"hh-{h['household_id']}")
        for h in journey.read("campaigns", ["campaign_id", "household_id"]).to_pylist()
        if campaign is None or h["campaign_id"] == campaign
        for retailer in customers.get(h["household_id"], set())
    }


def test_campaigns_are_imported_once_with_their_history(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["import-campaigns", "--shift-weeks", "455"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["campaigns"] == journey.read("campaign_descriptions", ["campaign_id"]).num_rows
    assert first["history_rows"]["journey_campaign_shoppers"] == len(reached_pairs())
    assert first["history_rows"]["journey_coupon_redemptions"] == len(
        {
            (r["campaign_id"], r["household_id"], r["coupon_upc"], r["redemption_date"])
            for r in journey.read(
                "coupon_redemptions",
                ["campaign_id", "household_id", "coupon_upc", "redemption_date"],
            ).to_pylist()
        }
    )

    store = FirestoreCampaignStore(clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"]))
    campaign = store.get("cj-18")
    assert campaign is not None
    coupons = journey.read("coupons", ["campaign_id", "product_id"]).to_pylist()
    assert set(campaign.targeted_product_ids) == {
        str(c["product_id"]) for c in coupons if c["campaign_id"] == 18
    }
    assert campaign.status == "archived" and campaign.starts_at < campaign.ends_at
    assert set(campaign.retailer_ids) == {"freshmart", "greenbasket", "citygrocer"}

    project = stack["GOOGLE_CLOUD_PROJECT"]
    reached = query(
        stack,
        f"SELECT campaign_id, retailer_id, shopper_id FROM `{project}.cartwise."
        "journey_campaign_shoppers` WHERE campaign_id = @c",
        c="cj-18",
    )
    assert len(reached) == len(reached_pairs(18))
    assert {(r["campaign_id"], r["retailer_id"], r["shopper_id"]) for r in reached} == (
        reached_pairs(18)
    )
    # Every redemption is one retailer's, and that retailer's customer's.
    redeemed = query(
        stack,
        f"SELECT retailer_id, shopper_id FROM `{project}.cartwise."
        "journey_coupon_redemptions` WHERE campaign_id = @c",
        c="cj-18",
    )
    customers = customers_of(Simulation(shift_weeks=455))
    assert redeemed and all(
        r["retailer_id"] in customers[int(r["shopper_id"].removeprefix("hh-"))] for r in redeemed
    )

    assert cli.main(["import-campaigns", "--shift-weeks", "455"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert sum(again["inserted"].values()) == 0
