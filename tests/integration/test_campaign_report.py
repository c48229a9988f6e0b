"""The campaign report on a small hand-made data set written into the BigQuery emulator's
read models; every figure below was computed by hand from the rows written here."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared import cli
from shared.campaigns.admin import issue_csm_key
from shared.campaigns.firestore_admin import FirestoreCsmAccounts
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.campaigns.model import Campaign
from shared.platform import clients
from shared.system.resources import CREDENTIALS_DATABASE
from tests.integration.campaign_cleanup import remove
from tests.integration.test_freezer import query
from tests.integration.test_journey_campaigns import reached_pairs

pytestmark = pytest.mark.integration

DAY0 = datetime(2026, 10, 1, tzinfo=UTC)
Z = 1.959964


def at(day: int, hour: int = 12) -> str:
    return (DAY0 + timedelta(days=day, hours=hour - 0)).isoformat()


def common(retailer: str, shopper: str, when: str) -> dict[str, Any]:
    return {
        "row_id": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "retailer_id": retailer,
        "shopper_id": shopper,
        "session_id": None,
        "occurred_at": when,
        "ingested_at": when,
    }


def decision(retailer: str, shopper: str, campaign: str, outcome: str, when: str) -> Any:
    row = common(retailer, shopper, when)
    del row["ingested_at"]
    return {
        **row,
        "decided_at": when,
        "tree_version": "t1",
        "node_id": "root",
        "experience_id": f"{campaign}:play",
        "experience_type": "gamified_promotion",
        "campaign_id": campaign,
        "outcome": outcome,
    }


def order(retailer: str, shopper: str, order_id: str, when: str, total: str) -> Any:
    return {
        **common(retailer, shopper, when),
        "order_id": order_id,
        "total": total,
        "line_count": 1,
        "item_count": 1,
        "gross_amount": total,
        "discount_amount": "0",
    }


def line(
    retailer: str,
    shopper: str,
    order_id: str,
    when: str,
    product: str,
    amount: str,
    quantity: int = 1,
    brand: str | None = None,
) -> Any:
    return {
        **common(retailer, shopper, when),
        "order_id": order_id,
        "line_number": 0,
        "product_id": product,
        "brand": brand,
        "category": None,
        "quantity": quantity,
        "unit_price": amount,
        "discount": "0",
        "amount": amount,
    }


def play(
    retailer: str, shopper: str, campaign: str, play_id: str, when: str, won: bool, voided: bool
) -> Any:
    return {
        "play_id": play_id,
        "retailer_id": retailer,
        "shopper_id": shopper,
        "campaign_id": campaign,
        "order_id": f"order-of-{play_id}",
        "played_at": when,
        "won": won,
        "prize_value": "10" if won else "0",
        "voided": voided,
        "voided_at": when if voided else None,
        "paid": False,
    }


def experience_event(retailer: str, shopper: str, campaign: str, when: str) -> Any:
    return {
        **common(retailer, shopper, when),
        "experience_id": f"{campaign}:play",
        "campaign_id": campaign,
    }


@pytest.fixture(scope="module")
def campaign_id(stack: dict[str, str]) -> Iterator[str]:
    suffix = uuid.uuid4().hex[:8]
    r, other = f"rep-{suffix}", f"rep2-{suffix}"
    cid = f"report-{suffix}"
    project = stack["GOOGLE_CLOUD_PROJECT"]
    FirestoreCampaignStore(clients.firestore_client(project)).put(
        Campaign(
            campaign_id=cid,
            name="Hand-made",
            brand="BrandX",
            retailer_ids=[r],
            experience_type="gamified_promotion",
            status="archived",
            starts_at=DAY0,
            ends_at=DAY0 + timedelta(days=10),
            targeted_product_ids=["t1"],
            targeted_brands=["BrandX"],
            budget=100,
            win_probability=0.5,
            prize_value=10,
        )
    )
    tables: dict[str, list[Any]] = {
        "decision_experiences": [
            *(decision(r, s, cid, "shown", at(1, 10)) for s in ("e1", "e2", "e3")),
            decision(r, "e1", cid, "shown", at(2, 9)),
            *(decision(r, s, cid, "held_out", at(1, 10)) for s in ("h1", "h2")),
            decision(r, "m1", cid, "shown", at(1, 10)),
            decision(r, "m1", cid, "held_out", at(2, 10)),
            decision(other, "x1", cid, "shown", at(1, 10)),  # not one of its retailers
            decision(r, "e2", "another", "held_out", at(1, 10)),  # another campaign
        ],
        "experience_impressions": [
            experience_event(r, "e1", cid, at(1, 11)),
            experience_event(r, "e1", cid, at(2, 11)),
            experience_event(r, "e2", cid, at(1, 11)),
            experience_event(r, "e3", cid, at(1, 11)),
            experience_event(other, "x1", cid, at(1, 11)),
            experience_event(r, "e1", "another", at(1, 11)),
        ],
        "experience_clicks": [experience_event(r, "e1", cid, at(1, 12))],
        "orders": [
            order(r, "e1", "o-e1-0", at(0), "100"),  # before e1's first decision
            order(r, "e1", "o-e1-2", at(2), "50"),
            order(r, "e1", "o-e1-3", at(3), "30"),
            order(r, "e2", "o-e2-2", at(2), "44"),
            order(r, "h1", "o-h1-2", at(2), "20"),
            order(r, "h2", "o-h2-3", at(3), "30"),
            order(r, "m1", "o-m1-2", at(2), "25"),
            order(r, "e1", "o-e1-12", at(12), "70"),  # after the period
        ],
        "sold_products": [
            line(r, "e1", "o-e1-0", at(0), "t1", "10"),
            line(r, "e1", "o-e1-2", at(2), "t1", "10", quantity=2),
            line(r, "e1", "o-e1-2", at(2), "other", "40"),
            line(r, "e1", "o-e1-3", at(3), "x2", "6", brand="BrandX"),
            line(r, "e1", "o-e1-3", at(3), "other", "24"),
            line(r, "e2", "o-e2-2", at(2), "other", "44"),
            line(r, "h1", "o-h1-2", at(2), "t1", "4"),
            line(r, "h1", "o-h1-2", at(2), "other", "16"),
            line(r, "h2", "o-h2-3", at(3), "other", "30"),
            line(r, "m1", "o-m1-2", at(2), "t1", "5"),
            line(r, "m1", "o-m1-2", at(2), "other", "20"),
            line(r, "e1", "o-e1-12", at(12), "t1", "70"),
            line(other, "x1", "o-x1", at(2), "t1", "9"),
        ],
        "plays": [
            play(r, "e1", cid, "p-e1-2", at(2, 13), won=True, voided=False),
            play(r, "e1", cid, "p-e1-3", at(3, 13), won=False, voided=False),
            play(r, "e2", cid, "p-e2-2", at(2, 13), won=True, voided=False),
            play(r, "e2", cid, "p-e2-2", at(2, 13), won=True, voided=True),  # rewritten: voided
            play(other, "x1", cid, "p-x1", at(2, 13), won=True, voided=False),
        ],
    }
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    for table, rows in tables.items():
        errors = client.insert_rows_json(f"{project}.cartwise.{table}", rows, timeout=60)
        assert errors == [], (table, errors)
    try:
        yield cid
    finally:
        remove(stack, campaign_ids=[cid], retailers=[r, other])


def check(report: dict[str, Any], cid: str) -> None:
    assert report["campaign"]["campaign_id"] == cid
    assert report["period"]["to"] == (DAY0 + timedelta(days=10)).isoformat()
    assert report["exposure"] == {
        "impressions": 4,
        "clicks": 1,
        "click_through_rate": 0.25,
        "shoppers_reached": 3,
    }
    assert report["shoppers"] == {
        "eligible": 6,
        "exposed": 3,
        "held_out": 2,
        "mixed_left_out": 1,
        "held_out_share": 0.4,
    }
    assert report["participation"] == {
        "plays": 3,
        "players": 2,
        "participation_rate": round(2 / 3, 4),
        "wins": 1,
        "voided_wins": 1,
        "cost": 10.0,
        "budget_consumed_share": 0.1,
    }
    assert report["targeted_sales"] == {"amount": 35.0, "quantity": 6, "orders": 5, "buyers": 3}
    basket = report["uplift"]["basket_value"]
    # Exposed buyers e1 (50+30)/2 = 40 and e2 44: mean 42, var 8; held out 20 and 30: 25, 50.
    assert basket["exposed"] == {"shoppers": 2, "mean": 42.0, "sd": round(math.sqrt(8), 4)}
    assert basket["held_out"] == {"shoppers": 2, "mean": 25.0, "sd": round(math.sqrt(50), 4)}
    assert basket["difference"] == 17.0 and basket["relative"] == 0.68
    assert basket["ci95"] == pytest.approx([6.4453, 27.5547], abs=1e-4)
    assert basket["computable"] is True
    targeted = report["uplift"]["targeted_sales"]
    # Exposed e1 16 (10 + 6 after its first decision), e2 0, e3 0; held out h1 4, h2 0.
    assert targeted["exposed"]["shoppers"] == 3 and targeted["exposed"]["mean"] == 5.3333
    assert targeted["held_out"] == {"shoppers": 2, "mean": 2.0, "sd": 2.8284}
    assert targeted["difference"] == 3.3333 and targeted["relative"] == 1.6667
    assert targeted["ci95"] == pytest.approx([-7.8306, 14.4973], abs=1e-4)
    assert report["daily"] == [
        {"day": "2026-10-01", "targeted_sales": 10.0, "cost": 0.0, "cost_cumulative": 0.0},
        {"day": "2026-10-03", "targeted_sales": 19.0, "cost": 10.0, "cost_cumulative": 10.0},
        {"day": "2026-10-04", "targeted_sales": 6.0, "cost": 0.0, "cost_cumulative": 10.0},
    ]
    assert report["not_available"] == []
    assert report["journey"] is None


def test_the_report_api_gives_the_figures_computed_by_hand(
    stack: dict[str, str], campaign_id: str
) -> None:
    key = issue_csm_key(
        FirestoreCsmAccounts(
            clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"], CREDENTIALS_DATABASE)
        ),
        "report-reader",
        "analyst",
        None,
        datetime.now(UTC),
    )
    response = requests.get(
        f"{stack['CAMPAIGNS_URL']}/v1/campaigns/{campaign_id}/report",
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    try:
        assert response.status_code == 200, response.text
        check(response.json(), campaign_id)
    finally:
        remove(stack, keys=[key])


def test_cartwise_report_prints_the_same_report(
    stack: dict[str, str], campaign_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", campaign_id, "--json"]) == 0
    check(json.loads(capsys.readouterr().out), campaign_id)
    assert cli.main(["report", campaign_id]) == 0
    text = capsys.readouterr().out
    assert "impressions 4  clicks 1" in text
    assert "uplift basket value: +17.00 per shopper (95% CI +6.45 .. +27.55" in text
    assert cli.main(["report", "no-such-campaign"]) == 1


@pytest.mark.heavy
def test_a_real_complete_journey_campaign_reports_what_the_data_has_and_names_the_rest(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """cj-18 as imported from the data set (no decisions, no held-out group): the data set's
    reach and redemptions, and plainly no uplift."""
    from shared.journey import dataset as journey

    assert cli.main(["import-campaigns", "--shift-weeks", "455"]) == 0  # idempotent
    capsys.readouterr()
    assert cli.main(["report", "cj-18", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    redeemed = {
        (r["household_id"], r["coupon_upc"], r["redemption_date"].date())
        for r in journey.read(
            "coupon_redemptions", ["campaign_id", "household_id", "coupon_upc", "redemption_date"]
        ).to_pylist()
        if r["campaign_id"] == 18
    }
    j = report["journey"]
    # A shopper is a retailer's customer: a household is reached at each of its retailers.
    assert j["reached_shoppers"] == len(reached_pairs(18))
    assert j["redemptions"] == len(redeemed)
    redeeming = query(
        stack,
        "SELECT DISTINCT retailer_id, shopper_id FROM "
        f"`{stack['GOOGLE_CLOUD_PROJECT']}.cartwise.journey_coupon_redemptions` "
        "WHERE campaign_id = 'cj-18'",
    )
    assert j["redeeming_shoppers"] == len(redeeming)
    assert {r["shopper_id"] for r in redeeming} == {f"hh-{h}" for h, _, _ in redeemed}
    for metric in report["uplift"].values():
        assert metric["computable"] is False and metric["difference"] is None
    assert report["shoppers"]["held_out"] == 0
    assert any("held-out" in item for item in report["not_available"])
    assert cli.main(["report", "cj-18"]) == 0
    assert "coupon redemptions" in capsys.readouterr().out


def test_the_portfolio_figures_of_one_query_are_the_reports(
    stack: dict[str, str], campaign_id: str
) -> None:
    """The figures job computes every campaign in one query (``shared.campaigns.stats``):
    for this campaign, the same figures as its report, computed by hand above."""
    from shared.campaigns.stats import compute_stats
    from shared.platform.bigquery_warehouse import BigQueryWarehouse

    project = stack["GOOGLE_CLOUD_PROJECT"]
    campaign = FirestoreCampaignStore(clients.firestore_client(project)).get(campaign_id)
    assert campaign is not None
    bq = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    warehouse = BigQueryWarehouse(bq, project, "cartwise", ())
    now = datetime.now(UTC)
    (found,) = compute_stats([campaign], warehouse, project, "cartwise", now)
    assert (found.exposed, found.held_out) == (3, 2)  # m1 (both) left out, x1 elsewhere
    assert found.spent == 10.0  # one win of 10; e2's win voided
    assert found.uplift == 3.3333
    assert [found.uplift_low, found.uplift_high] == pytest.approx([-7.8306, 14.4973], abs=1e-4)
    assert found.last_shown_at == DAY0 + timedelta(days=2, hours=9)  # e1's second decision
    assert found.shown_recently == 0  # October
