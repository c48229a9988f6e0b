"""The Complete Journey's 27 campaigns as cartwise campaigns, and what really happened.

Each campaign of the data set becomes a cartwise campaign (``cj-{id}``) on every
simulated retailer, over its period moved by the simulation's shift, targeting the
products of its coupons and their brands. What really happened in the data set stays
beside it in BigQuery, so that later reports can be checked against it: which shoppers
each campaign reached (``journey_campaign_shoppers``) and which coupons they redeemed
(``journey_coupon_redemptions``).

Like every table with shoppers, both carry the retailer whose customer the row is about
(``retailer_id``): a customer id is the retailer's own, and two retailers may give the
same one to two people, so an erasure or a retention period is always one retailer's. A
household of the data set is a customer of every simulated retailer whose stores it
shopped at (``Simulation.retailer_of``): a campaign reached it at each of them (one row
per retailer). A redemption happened at one retailer: the one of that day's baskets with
a coupon discount, else of that day's baskets, else the household's most visited one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time

from shared.campaigns.model import Campaign
from shared.freezer.read_models import DATASET, Row
from shared.journey import dataset as journey
from shared.journey.tracker_simulator import Simulation, brand_of, shopper_id
from shared.platform.resource_model import BigQueryTable, Column

# The retailer whose customer the shopper is (one concept, one column in both tables).
RETAILER_COLUMN = Column(
    name="retailer_id",
    type="STRING",
    mode="NULLABLE",
    description="The retailer whose customer the shopper is; always set by the import "
    "(NULLABLE and last: BigQuery adds only NULLABLE columns to an existing table)",
)
JOURNEY_CAMPAIGN_SHOPPERS = BigQueryTable(
    dataset=DATASET,
    name="journey_campaign_shoppers",
    description="Complete Journey: the shoppers each campaign reached in the data set",
    columns=(
        Column(
            name="row_id", type="STRING", mode="REQUIRED", description="campaign:retailer:shopper"
        ),
        Column(name="campaign_id", type="STRING", mode="REQUIRED"),
        Column(name="shopper_id", type="STRING", mode="REQUIRED"),
        RETAILER_COLUMN,
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
            description="campaign:retailer:shopper:coupon:day",
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
        RETAILER_COLUMN,
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


@dataclass(frozen=True)
class Visits:
    """Where the data set's households shopped, as the simulation's retailers: baskets per
    retailer in all, per day, and per day with a coupon discount."""

    retailers: tuple[str, ...]
    baskets: dict[int, Counter[str]]
    days: dict[tuple[int, date], Counter[str]]
    coupon_days: dict[tuple[int, date], Counter[str]]

    def _best(self, counts: Counter[str] | None) -> str | None:
        """The retailer with the most baskets; ties go to the simulation's first."""
        if not counts:
            return None
        return min(counts, key=lambda r: (-counts[r], self.retailers.index(r)))

    def customer_of(self, household: int) -> list[str]:
        """The retailers the household is a customer of (it shopped at one of their stores)."""
        counts = self.baskets.get(household, Counter())
        return [r for r in self.retailers if counts[r]]

    def redeemed_at(self, household: int, day: date) -> str | None:
        """The retailer of a coupon redeemed that day (the data set does not say)."""
        return (
            self._best(self.coupon_days.get((household, day)))
            or self._best(self.days.get((household, day)))
            or self._best(self.baskets.get(household))
        )


def visits(simulation: Simulation) -> Visits:
    import pyarrow.compute as pc

    lines = journey.read(
        "transactions",
        ("household_id", "store_id", "basket_id", "transaction_timestamp", "coupon_disc"),
    )
    lines = lines.append_column("coupon", pc.not_equal(lines.column("coupon_disc"), 0.0))
    baskets = lines.group_by(["basket_id", "household_id", "store_id"]).aggregate(
        [("transaction_timestamp", "min"), ("coupon", "any")]
    )
    retailer_of: dict[int, str] = {}
    result = Visits(simulation.retailers, defaultdict(Counter), defaultdict(Counter), {})
    for b in baskets.to_pylist():
        store = b["store_id"]
        if store not in retailer_of:
            retailer_of[store] = simulation.retailer_of(store)
        retailer, household = retailer_of[store], b["household_id"]
        day = b["transaction_timestamp_min"].date()
        result.baskets[household][retailer] += 1
        result.days[(household, day)][retailer] += 1
        if b["coupon_any"]:
            result.coupon_days.setdefault((household, day), Counter())[retailer] += 1
    return result


def _nobody(retailer_id: str, shopper_id: str) -> bool:
    return False


def import_campaigns(
    simulation: Simulation, now: datetime, skip: Callable[[str, str], bool] = _nobody
) -> JourneyCampaigns:
    """Campaigns and their history; a campaign whose period is over is archived. The
    history leaves out the shoppers ``skip(retailer_id, shopper_id)`` names (erased or
    suppressed: a new import never brings them back)."""
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
    shoppers = visits(simulation)
    reached = [
        {
            "row_id": f"{campaign_id(r['campaign_id'])}:{retailer}:{shopper_id(r['household_id'])}",
            "campaign_id": campaign_id(r["campaign_id"]),
            "retailer_id": retailer,
            "shopper_id": shopper_id(r["household_id"]),
        }
        for r in journey.read("campaigns", ("campaign_id", "household_id")).to_pylist()
        for retailer in shoppers.customer_of(r["household_id"])
        if not skip(retailer, shopper_id(r["household_id"]))
    ]
    redeemed: dict[str, Row] = {}
    for r in journey.read(
        "coupon_redemptions", ("campaign_id", "household_id", "coupon_upc", "redemption_date")
    ).to_pylist():
        retailer = shoppers.redeemed_at(r["household_id"], r["redemption_date"].date())
        if retailer is None or skip(retailer, shopper_id(r["household_id"])):
            continue  # a household without a basket is no retailer's customer
        day = simulation.moment(r["redemption_date"].to_pydatetime())
        row_id = (
            f"{campaign_id(r['campaign_id'])}:{retailer}:{shopper_id(r['household_id'])}:"
            f"{r['coupon_upc']}:{day.date().isoformat()}"
        )
        redeemed[row_id] = {
            "row_id": row_id,
            "campaign_id": campaign_id(r["campaign_id"]),
            "retailer_id": retailer,
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
