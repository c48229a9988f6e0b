"""The Complete Journey's campaigns become cartwise campaigns; what happened stays beside."""

from __future__ import annotations

import json

import pytest

from shared import cli
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.journey import dataset as journey
from shared.platform import clients
from tests.integration.test_freezer import query

pytestmark = pytest.mark.integration


def test_campaigns_are_imported_once_with_their_history(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["import-campaigns", "--shift-weeks", "455"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["campaigns"] == journey.read("campaign_descriptions", ["campaign_id"]).num_rows
    assert first["history_rows"]["journey_campaign_shoppers"] == (
        journey.read("campaigns", ["campaign_id"]).num_rows
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

    reached = query(
        stack,
        f"SELECT COUNT(*) AS n FROM `{stack['GOOGLE_CLOUD_PROJECT']}.cartwise."
        "journey_campaign_shoppers` WHERE campaign_id = @c",
        c="cj-18",
    )[0]["n"]
    households = journey.read("campaigns", ["campaign_id", "household_id"]).to_pylist()
    assert reached == sum(1 for h in households if h["campaign_id"] == 18)

    assert cli.main(["import-campaigns", "--shift-weeks", "455"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert sum(again["inserted"].values()) == 0
