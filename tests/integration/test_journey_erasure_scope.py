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

from emulators.bootstrap import create_bigquery
from emulators.config import StackSettings
from shared.campaigns.model import Campaign
from shared.campaigns.report import campaign_report
from shared.freezer.bigquery_bulk_load import BigQueryBulkLoader
from shared.freezer.read_models import DATASET, READ_MODELS
from shared.journey.campaigns import (
    JOURNEY_CAMPAIGN_SHOPPERS,
    JOURNEY_COUPON_REDEMPTIONS,
    JOURNEY_TABLES,
)
from shared.journey.commands import drop_rows_without_retailer
from shared.platform import clients
from shared.platform.bigquery_warehouse import BigQueryWarehouse
from shared.privacy.bigquery_erasers import BigQueryShopperRows
from shared.privacy.firestore_records import FirestoreRetention
from shared.privacy.retention import DataClass
from shared.system.resources import RETENTION, SYSTEM
from tests.integration.owned_data import empty_dataset
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
        f"SELECT row_id FROM `{project}.cartwise.{table}` WHERE shopper_id = @s ORDER BY row_id",
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


def _declared_in(system: Any, dataset: str, tables: Any) -> Any:
    """The declaration ``make up`` bootstraps, for ``tables`` in the test's own dataset."""
    return system.model_copy(
        update={
            "bigquery_datasets": [
                d.model_copy(update={"name": dataset})
                for d in system.bigquery_datasets
                if d.name == DATASET
            ],
            "bigquery_tables": [t.model_copy(update={"dataset": dataset}) for t in tables],
        }
    )


def test_a_saved_stacks_journey_tables_get_retailer_id_and_the_import_replaces_old_rows(
    stack: dict[str, str],
) -> None:
    """A stack saved before the column (``.local/data``): ``make up`` adds it to the
    tables, the old rows (no retailer) stay until ``cartwise import-campaigns`` drops them,
    and erasure by retailer works on the updated table (the emulator's storage too)."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    before = tuple(
        t.model_copy(update={"columns": tuple(c for c in t.columns if c.name != "retailer_id")})
        for t in JOURNEY_TABLES
    )
    with empty_dataset(stack, "jsaved", before) as dataset:
        old = {
            "row_id": f"{CAMPAIGN}:hh-1",
            "campaign_id": CAMPAIGN,
            "shopper_id": "hh-1",
            "coupon_upc": COUPON,
            "redeemed_at": "2025-01-06T00:00:00+00:00",
        }
        loaded = BigQueryBulkLoader(client, project, before, dataset=dataset)
        assert loaded.load(JOURNEY_COUPON_REDEMPTIONS.name, [old]) == 1

        create_bigquery(StackSettings(), _declared_in(SYSTEM, dataset, JOURNEY_TABLES))

        for table in JOURNEY_TABLES:
            got = client.get_table(f"{project}.{dataset}.{table.name}")
            assert tuple(f.name for f in got.schema) == table.column_names
        ours = [t.model_copy(update={"dataset": dataset}) for t in JOURNEY_TABLES]
        loader = BigQueryBulkLoader(client, project, ours)
        for shop in ("freshmart", "greenbasket"):
            row = old | {"row_id": f"{CAMPAIGN}:{shop}:hh-1", "retailer_id": shop}
            assert loader.load(JOURNEY_COUPON_REDEMPTIONS.name, [row]) == 1
        redemptions = next(t for t in ours if t.name == JOURNEY_COUPON_REDEMPTIONS.name)
        assert (
            BigQueryShopperRows(client, project, redemptions).erase_shopper("freshmart", "hh-1")
            == 1
        )
        assert drop_rows_without_retailer(client, project, ours) == {
            JOURNEY_CAMPAIGN_SHOPPERS.name: 0,
            JOURNEY_COUPON_REDEMPTIONS.name: 1,
        }
        left = query(
            stack,
            f"SELECT retailer_id FROM `{project}.{dataset}.{JOURNEY_COUPON_REDEMPTIONS.name}`",
        )
        assert left == [{"retailer_id": "greenbasket"}]


def test_a_journey_report_counts_the_campaigns_retailers_customers_only(
    stack: dict[str, str], unique: str
) -> None:
    """Same customer id at retailers A, B and C; the campaign runs at A and B, and the data
    set reached (and saw a redemption by) A's and C's customers: the report counts A's
    only, and B's sales are not "sales to reached shoppers"."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    shop_a, shop_b, shop_c = (f"jreport-{x}-{unique}" for x in "abc")
    customer, product = f"hh-same-{unique}", f"p-{unique}"
    campaign_id = f"cj-scope-{unique}"
    now = datetime.now(UTC)
    loader = BigQueryBulkLoader(client, project, JOURNEY_TABLES)
    for shop in (shop_a, shop_c):
        assert loader.load(
            JOURNEY_CAMPAIGN_SHOPPERS.name,
            [
                {
                    "row_id": f"{campaign_id}:{shop}:{customer}",
                    "campaign_id": campaign_id,
                    "retailer_id": shop,
                    "shopper_id": customer,
                }
            ],
        )
        assert loader.load(
            JOURNEY_COUPON_REDEMPTIONS.name,
            [
                {
                    "row_id": f"{campaign_id}:{shop}:{customer}:{COUPON}:x",
                    "campaign_id": campaign_id,
                    "retailer_id": shop,
                    "shopper_id": customer,
                    "coupon_upc": COUPON,
                    "redeemed_at": (now - timedelta(days=2)).isoformat(),
                }
            ],
        )
    sold = BigQueryBulkLoader(client, project, READ_MODELS)
    for shop, amount in ((shop_a, "2.00"), (shop_b, "3.00")):
        assert sold.load(
            "sold_products",
            [
                {
                    "row_id": f"{shop}:o-{unique}:1",
                    "event_id": f"e-{shop}",
                    "retailer_id": shop,
                    "shopper_id": customer,
                    "occurred_at": (now - timedelta(days=1)).isoformat(),
                    "ingested_at": (now - timedelta(days=1)).isoformat(),
                    "order_id": f"o-{unique}",
                    "line_number": 1,
                    "product_id": product,
                    "quantity": 1,
                    "unit_price": amount,
                    "discount": "0",
                    "amount": amount,
                }
            ],
        )
    campaign = Campaign(
        campaign_id=campaign_id,
        name="Complete Journey campaign, two of three retailers",
        retailer_ids=[shop_a, shop_b],
        experience_type="personalized_promotion",
        status="active",
        starts_at=now - timedelta(days=10),
        ends_at=now + timedelta(days=10),
        targeted_product_ids=[product],
        origin="completejourney:0:TypeA",
    )
    warehouse = BigQueryWarehouse(client, project, DATASET, ())
    journey = campaign_report(campaign, warehouse, project, DATASET, now)["journey"]
    assert journey["reached_shoppers"] == 1 and journey["redemptions"] == 1, journey
    assert journey["redeeming_shoppers"] == 1, journey
    assert journey["coupon_products_sales"] == {
        "amount": 5.0,
        "buyers": 2,
        "amount_by_reached_shoppers": 2.0,
        "reached_buyers": 1,
    }
