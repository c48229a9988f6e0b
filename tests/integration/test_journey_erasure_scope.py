"""Attack: two retailers, one customer id, two people. The Complete Journey ground-truth
tables (``journey_campaign_shoppers``, ``journey_coupon_redemptions``) are erased and
purged per retailer, like every other table: one retailer's erasure or retention period
never reaches another retailer's rows (docs/PRIVACY.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.freezer.bigquery_bulk_load import BigQueryBulkLoader
from shared.journey.campaigns import (
    JOURNEY_CAMPAIGN_SHOPPERS,
    JOURNEY_COUPON_REDEMPTIONS,
    JOURNEY_TABLES,
)
from shared.platform import clients
from shared.privacy.firestore_records import FirestoreRetention
from shared.privacy.retention import DataClass
from shared.system.resources import RETENTION
from tests.integration.test_freezer import query
from tests.integration.test_privacy import _erasure

pytestmark = pytest.mark.integration

CAMPAIGN = "cj-8"
COUPON = "51800000050"


def _load(stack: dict[str, str], retailer: str, shopper: str, days_ago: int) -> None:
    """The shopper reached by a Complete Journey campaign at ``retailer`` and redeeming its
    coupon ``days_ago``, loaded as ``cartwise import-campaigns`` loads the two tables."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    loader = BigQueryBulkLoader(
        clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"]), project, JOURNEY_TABLES
    )
    day = (datetime.now(UTC) - timedelta(days=days_ago)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    reached = {
        "row_id": f"{CAMPAIGN}:{retailer}:{shopper}",
        "campaign_id": CAMPAIGN,
        "retailer_id": retailer,
        "shopper_id": shopper,
    }
    redeemed = {
        "row_id": f"{CAMPAIGN}:{retailer}:{shopper}:{COUPON}:{day.date().isoformat()}",
        "campaign_id": CAMPAIGN,
        "retailer_id": retailer,
        "shopper_id": shopper,
        "coupon_upc": COUPON,
        "redeemed_at": day.isoformat(),
    }
    assert loader.load(JOURNEY_CAMPAIGN_SHOPPERS.name, [reached]) == 1
    assert loader.load(JOURNEY_COUPON_REDEMPTIONS.name, [redeemed]) == 1


def _row_ids(stack: dict[str, str], table: str, shopper: str) -> list[str]:
    """Every row of the customer id in a journey table, whatever its retailer."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    rows = query(
        stack,
        f"SELECT row_id FROM `{project}.cartwise.{table}` WHERE shopper_id = @s ORDER BY row_id",  # noqa: S608
        s=shopper,
    )
    return [str(r["row_id"]) for r in rows]


def _all_rows(stack: dict[str, str], shopper: str) -> dict[str, list[str]]:
    return {t.name: _row_ids(stack, t.name, shopper) for t in JOURNEY_TABLES}


def test_erasing_a_shopper_at_one_retailer_leaves_the_same_customer_id_at_another(
    stack: dict[str, str], unique: str, retailer_key: Callable[[str], str]
) -> None:
    shop_a, shop_b = f"jscope-a-{unique}", f"jscope-b-{unique}"
    customer = f"hh-same-{unique}"  # each retailer's own customer id: two different people
    key_a = retailer_key(shop_a)
    for shop in (shop_a, shop_b):
        _load(stack, shop, customer, days_ago=3)
    before = _all_rows(stack, customer)
    assert all(len(ids) == 2 for ids in before.values()), before

    done: dict[str, Any] = _erasure(stack, key_a, customer)

    assert done["receipts"]["bigquery:journey_campaign_shoppers"]["deleted"] == 1, done
    assert done["receipts"]["bigquery:journey_coupon_redemptions"]["deleted"] == 1, done
    after = _all_rows(stack, customer)
    # Retailer B's rows are all still there; retailer A's are gone.
    assert after == {t: [i for i in ids if f":{shop_b}:" in i] for t, ids in before.items()}
    assert all(len(ids) == 1 for ids in after.values()), after


def test_one_retailers_retention_purge_leaves_another_retailers_journey_rows(
    stack: dict[str, str], unique: str, retailer_key: Callable[[str], str]
) -> None:
    """Retailer A keeps read models 30 days, retailer B the default (the ceiling): a
    redemption 40 days old goes at A and stays at B, the same customer id at both."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    shop_a, shop_b = f"jpurge-a-{unique}", f"jpurge-b-{unique}"
    customer = f"hh-same-{unique}"
    retailer_key(shop_a)  # the purge visits retailers with a key or settings (cleaned up)
    retailer_key(shop_b)
    FirestoreRetention(clients.firestore_client(project), RETENTION).set(
        shop_a, {DataClass.READ_MODELS.value: 30}
    )
    for shop in (shop_a, shop_b):
        _load(stack, shop, customer, days_ago=40)

    purged = requests.post(f"{stack['PRIVACY_MAINTENANCE_URL']}/purge", timeout=600)
    assert purged.status_code == 200, purged.text
    deleted = purged.json()["deleted"]
    assert deleted[f"{shop_a}/bigquery:journey_coupon_redemptions"] == 1, deleted
    assert deleted[f"{shop_b}/bigquery:journey_coupon_redemptions"] == 0, deleted
    redemptions = _row_ids(stack, JOURNEY_COUPON_REDEMPTIONS.name, customer)
    assert [i.split(":")[1] for i in redemptions] == [shop_b]
