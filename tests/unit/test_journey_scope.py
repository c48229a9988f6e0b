"""The Complete Journey ground truth is per retailer: every row names the retailer whose
customer it is, the store plan refuses a shopper table without ``retailer_id``, and an
import leaves out erased shoppers at their retailer only."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from shared.journey.campaigns import (
    JOURNEY_CAMPAIGN_SHOPPERS,
    JOURNEY_COUPON_REDEMPTIONS,
    JOURNEY_TABLES,
    Visits,
    import_campaigns,
)
from shared.journey.tracker_simulator import RETAILERS, Simulation
from shared.platform.resource_model import BigQueryTable, Column
from shared.privacy.store_plan import store_plan
from shared.system.resources import BIGQUERY_DATA_CLASSES, SYSTEM

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def test_every_bigquery_table_with_shoppers_has_a_retailer_column() -> None:
    for table in SYSTEM.bigquery_tables:
        if "shopper_id" in table.column_names:
            assert "retailer_id" in table.column_names, table.name
    for table in JOURNEY_TABLES:
        retailer = next(c for c in table.columns if c.name == "retailer_id")
        # Last and NULLABLE: the only column BigQuery adds to a table that exists.
        assert table.column_names[-1] == "retailer_id" and retailer.mode == "NULLABLE"


def test_the_store_plan_refuses_a_shopper_table_without_retailer_id() -> None:
    from tests.unit.infra_systems import with_changes

    unscoped = BigQueryTable(
        dataset="cartwise",
        name=JOURNEY_COUPON_REDEMPTIONS.name,
        description="as it was",
        columns=tuple(c for c in JOURNEY_COUPON_REDEMPTIONS.columns if c.name != "retailer_id"),
    )
    tables = tuple(unscoped if t.name == unscoped.name else t for t in SYSTEM.bigquery_tables)
    assert BIGQUERY_DATA_CLASSES[unscoped.name]
    with pytest.raises(ValueError, match=r"journey_coupon_redemptions.*retailer_id"):
        store_plan(with_changes(bigquery_tables=tables))
    shopper_free = BigQueryTable(
        dataset="cartwise",
        name="prices",
        description="no shopper",
        columns=(Column(name="product_id", type="STRING"),),
    )
    planned = store_plan(with_changes(bigquery_tables=(*SYSTEM.bigquery_tables, shopper_free)))
    assert "bigquery:prices" not in {p.name for p in planned}


def test_a_redemption_goes_to_the_retailer_of_that_days_coupon_basket() -> None:
    a, b, c = RETAILERS
    day, other = date(2017, 3, 1), date(2017, 3, 2)
    visits = Visits(
        RETAILERS,
        baskets={1: Counter({b: 5, c: 1}), 2: Counter({c: 2, a: 2})},
        days={(1, day): Counter({c: 1, b: 1}), (1, other): Counter({c: 2})},
        coupon_days={(1, day): Counter({c: 1})},
    )
    assert visits.customer_of(1) == [b, c] and visits.customer_of(3) == []
    assert visits.redeemed_at(1, day) == c  # the basket with a coupon discount
    assert visits.redeemed_at(1, other) == c  # that day's basket
    assert visits.redeemed_at(1, date(2017, 4, 1)) == b  # the most visited retailer
    assert visits.redeemed_at(2, day) == a  # a tie: the simulation's first retailer
    assert visits.redeemed_at(3, day) is None  # no basket: no retailer's customer


def test_the_import_names_the_retailer_and_skips_erased_shoppers_there_only() -> None:
    simulation = Simulation(shift_weeks=455)
    everyone = import_campaigns(simulation, NOW)
    reached = everyone.history[JOURNEY_CAMPAIGN_SHOPPERS.name]
    redeemed = everyone.history[JOURNEY_COUPON_REDEMPTIONS.name]
    assert reached and redeemed
    for row in (*reached, *redeemed):
        assert row["retailer_id"] in RETAILERS
        assert row["row_id"].split(":")[1:3] == [row["retailer_id"], row["shopper_id"]]
    retailers_of: dict[str, set[str]] = {}
    for row in reached:
        retailers_of.setdefault(row["shopper_id"], set()).add(row["retailer_id"])
    # A household shopping at two retailers is reached as each retailer's customer.
    shopper, shops = next((s, r) for s, r in retailers_of.items() if len(r) >= 2)
    erased_at = sorted(shops)[0]

    def erased(retailer_id: str, shopper_id: str) -> bool:
        return (retailer_id, shopper_id) == (erased_at, shopper)

    without = import_campaigns(simulation, NOW, erased)
    left = without.history[JOURNEY_CAMPAIGN_SHOPPERS.name]
    assert not any(erased(r["retailer_id"], r["shopper_id"]) for r in left)
    assert [r for r in left if r["shopper_id"] == shopper] == [
        r for r in reached if r["shopper_id"] == shopper and r["retailer_id"] != erased_at
    ]
    assert len(left) == len(reached) - sum(
        1 for r in reached if erased(r["retailer_id"], r["shopper_id"])
    )
    assert not any(
        erased(r["retailer_id"], r["shopper_id"])
        for r in without.history[JOURNEY_COUPON_REDEMPTIONS.name]
    )
