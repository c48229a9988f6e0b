"""The Complete Journey's 27 campaigns as cartwise campaigns, and what really happened.

Each campaign of the data set becomes a cartwise campaign (``cj-{id}``) on every
simulated retailer, over its period moved by the simulation's shift, targeting the
products of its coupons and their brands. What really happened in the data set stays
beside it in BigQuery, so that later reports can be checked against it: which shoppers
each campaign reached (``journey_campaign_shoppers``) and which coupons they redeemed
(``journey_coupon_redemptions``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time

from shared.campaigns.model import Campaign
from shared.freezer.read_models import DATASET, Row
from shared.journey import dataset as journey
from shared.journey.tracker_simulator import Simulation, brand_of, shopper_id
from shared.platform.resource_model import BigQueryTable, Column

JOURNEY_CAMPAIGN_SHOPPERS = BigQueryTable(
    dataset=DATASET,
    name="journey_campaign_shoppers",
    description="Complete Journey: the shoppers each campaign reached in the data set",
    columns=(
        Column(name="row_id", type="STRING", mode="REQUIRED", description="campaign:shopper"),
        Column(name="campaign_id", type="STRING", mode="REQUIRED"),
        Column(name="shopper_id", type="STRING", mode="REQUIRED"),
    ),
    clustering=("campaign_id",),
)
JOURNEY_COUPON_REDEMPTIONS = BigQueryTable(
    dataset=DATASET,
    name="journey_coupon_redemptions",
    description="Complete Journey: the coupons shoppers redeemed, per campaign",
    columns=(
        Column(
            name="row_id",
            type="STRING",
            mode="REQUIRED",
            description="campaign:shopper:coupon:day",
        ),
        Column(name="campaign_id", type="STRING", mode="REQUIRED"),
        Column(name="shopper_id", type="STRING", mode="REQUIRED"),
        Column(name="coupon_upc", type="STRING", mode="REQUIRED"),
        Column(
            name="redeemed_at",
            type="TIMESTAMP",
            mode="REQUIRED",
            description="The day of the redemption (midnight UTC), shifted like the events",
        ),
    ),
    partition_field="redeemed_at",
    clustering=("campaign_id",),
)
JOURNEY_TABLES = (JOURNEY_CAMPAIGN_SHOPPERS, JOURNEY_COUPON_REDEMPTIONS)


def campaign_id(data_set_id: int) -> str:
    return f"cj-{data_set_id}"


@dataclass(frozen=True)
class JourneyCampaigns:
    campaigns: list[Campaign]
    history: dict[str, list[Row]]  # rows per table name


def import_campaigns(simulation: Simulation, now: datetime) -> JourneyCampaigns:
    """Campaigns and their history; a campaign whose period is over is archived."""
    products = journey.products()
    targeted: dict[int, set[int]] = defaultdict(set)
    for row in journey.read("coupons", ("campaign_id", "product_id")).to_pylist():
        targeted[row["campaign_id"]].add(row["product_id"])
    campaigns = []
    for row in journey.read(
        "campaign_descriptions", ("campaign_id", "campaign_type", "start_date", "end_date")
    ).to_pylist():
        ids = sorted(targeted[row["campaign_id"]])
        brands = {brand_of(products.get(p)) for p in ids}
        starts = simulation.moment(datetime.combine(row["start_date"].date(), time()))
        ends = simulation.moment(datetime.combine(row["end_date"].date(), time.max))
        campaigns.append(
            Campaign(
                campaign_id=campaign_id(row["campaign_id"]),
                name=f"Complete Journey campaign {row['campaign_id']} ({row['campaign_type']})",
                retailer_ids=list(simulation.retailers),
                experience_type="personalized_promotion",
                status="archived" if ends <= now else "active",
                starts_at=starts,
                ends_at=ends,
                targeted_product_ids=[str(p) for p in ids],
                targeted_brands=sorted(b for b in brands if b),
                origin=f"completejourney:{row['campaign_id']}:{row['campaign_type']}",
            )
        )
    reached = [
        {
            "row_id": f"{campaign_id(r['campaign_id'])}:{shopper_id(r['household_id'])}",
            "campaign_id": campaign_id(r["campaign_id"]),
            "shopper_id": shopper_id(r["household_id"]),
        }
        for r in journey.read("campaigns", ("campaign_id", "household_id")).to_pylist()
    ]
    redeemed: dict[str, Row] = {}
    for r in journey.read(
        "coupon_redemptions", ("campaign_id", "household_id", "coupon_upc", "redemption_date")
    ).to_pylist():
        day = simulation.moment(r["redemption_date"].to_pydatetime())
        row_id = (
            f"{campaign_id(r['campaign_id'])}:{shopper_id(r['household_id'])}:"
            f"{r['coupon_upc']}:{day.date().isoformat()}"
        )
        redeemed[row_id] = {
            "row_id": row_id,
            "campaign_id": campaign_id(r["campaign_id"]),
            "shopper_id": shopper_id(r["household_id"]),
            "coupon_upc": str(r["coupon_upc"]),
            "redeemed_at": day.isoformat(),
        }
    return JourneyCampaigns(
        campaigns=campaigns,
        history={
            JOURNEY_CAMPAIGN_SHOPPERS.name: reached,
            JOURNEY_COUPON_REDEMPTIONS.name: list(redeemed.values()),
        },
    )
