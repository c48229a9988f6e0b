"""A campaign's performance, computed in BigQuery from the cold read models.

The SQL lives here (``*_SQL`` below); each query is parameterised by the campaign (its id,
retailers, period and targeting, passed as JSON arrays) and aggregates in the warehouse;
only group statistics (counts, means, variances) come back. Python then derives rates and
the uplift's confidence interval from them.

Sources (dataset ``cartwise``):
- ``experience_impressions``, ``experience_clicks``: impressions and clicks of the campaign;
- ``decision_experiences``: eligible shoppers, split into *exposed* (outcome ``shown``) and
  *held out* (outcome ``held_out``: the control group, never shown the campaign);
- ``plays``: participation, wins and cost of a gamified promotion, net of voided wins;
- ``orders`` and ``sold_products``: basket value and sales of the targeted products;
- ``journey_campaign_shoppers``, ``journey_coupon_redemptions``: for campaigns imported
  from the Complete Journey, who the data set says was reached, and the coupons redeemed
  (at the campaign's retailers; a shopper is a retailer and its customer id).

Uplift compares, per shopper, exposed with held-out shoppers over what they bought from
their first eligible decision to the end of the period (or now): the mean basket value
(among shoppers with an order) and the targeted sales (every eligible shopper, 0 if none).
The 95% interval is Welch's normal approximation: diff +/- 1.96 * sqrt(v_e/n_e + v_h/n_h).
A shopper seen both shown and held out (impossible with the engine's deterministic control
group, but counted if it happens) is left out of both groups.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from shared.campaigns.model import Campaign

Z_95 = 1.959964


def welch_interval(
    mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int
) -> tuple[float, float, float]:
    """``a`` minus ``b``: the difference of means and its Welch normal 95% interval."""
    diff = mean_a - mean_b
    se = math.sqrt(var_a / n_a + var_b / n_b)
    return diff, diff - Z_95 * se, diff + Z_95 * se


class ReportWarehouse(Protocol):
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...


def _scope(alias: str, moment: str = "occurred_at") -> str:
    """The campaign's retailers and period on a read model (``alias``)."""
    return (
        f"{alias}.retailer_id IN UNNEST(JSON_VALUE_ARRAY(@retailers)) "
        f"AND {alias}.{moment} >= @starts AND {alias}.{moment} < @ends"
    )


def _targeted(alias: str) -> str:
    """The campaign's products: any targeted id, brand or category (as the engine does)."""
    return (
        f"({alias}.product_id IN UNNEST(JSON_VALUE_ARRAY(@products)) "
        f"OR {alias}.brand IN UNNEST(JSON_VALUE_ARRAY(@brands)) "
        f"OR {alias}.category IN UNNEST(JSON_VALUE_ARRAY(@categories)))"
    )


def exposure_sql(ref: str) -> str:
    return f"""
SELECT
  (SELECT COUNT(*) FROM {ref}.experience_impressions i
    WHERE i.campaign_id = @campaign_id AND {_scope("i")}) AS impressions,
  (SELECT COUNT(DISTINCT CONCAT(i.retailer_id, '/', i.shopper_id))
    FROM {ref}.experience_impressions i
    WHERE i.campaign_id = @campaign_id AND {_scope("i")}) AS shoppers_reached,
  (SELECT COUNT(*) FROM {ref}.experience_clicks c
    WHERE c.campaign_id = @campaign_id AND {_scope("c")}) AS clicks
"""  # noqa: S608 (identifiers from the declaration; values are parameters)


def groups_sql(ref: str) -> str:
    return f"""
WITH eligible AS (
  SELECT d.retailer_id, d.shopper_id, MIN(d.occurred_at) AS first_at,
         MAX(CASE WHEN d.outcome = 'held_out' THEN 1 ELSE 0 END) AS held,
         MAX(CASE WHEN d.outcome = 'shown' THEN 1 ELSE 0 END) AS shown
  FROM {ref}.decision_experiences d
  WHERE d.campaign_id = @campaign_id AND d.outcome IN ('shown', 'held_out') AND {_scope("d")}
  GROUP BY d.retailer_id, d.shopper_id
),
grouped AS (
  SELECT retailer_id, shopper_id, first_at,
         CASE WHEN held = 1 AND shown = 0 THEN 'held_out'
              WHEN shown = 1 AND held = 0 THEN 'exposed'
              ELSE 'mixed' END AS grp
  FROM eligible
),
baskets AS (
  SELECT g.retailer_id, g.shopper_id, COUNT(*) AS orders,
         AVG(CAST(o.total AS FLOAT64)) AS basket_value
  FROM grouped g JOIN {ref}.orders o
    ON o.retailer_id = g.retailer_id AND o.shopper_id = g.shopper_id
  WHERE o.occurred_at >= g.first_at AND {_scope("o")}
  GROUP BY g.retailer_id, g.shopper_id
),
targeted AS (
  SELECT g.retailer_id, g.shopper_id, SUM(CAST(s.amount AS FLOAT64)) AS amount
  FROM grouped g JOIN {ref}.sold_products s
    ON s.retailer_id = g.retailer_id AND s.shopper_id = g.shopper_id
  WHERE s.occurred_at >= g.first_at AND {_scope("s")} AND {_targeted("s")}
  GROUP BY g.retailer_id, g.shopper_id
),
per_shopper AS (
  SELECT g.grp, b.basket_value, COALESCE(t.amount, 0) AS targeted_sales
  FROM grouped g
  LEFT JOIN baskets b ON b.retailer_id = g.retailer_id AND b.shopper_id = g.shopper_id
  LEFT JOIN targeted t ON t.retailer_id = g.retailer_id AND t.shopper_id = g.shopper_id
)
SELECT grp,
       COUNT(*) AS shoppers,
       COUNT(basket_value) AS buyers,
       AVG(basket_value) AS basket_mean,
       VAR_SAMP(basket_value) AS basket_var,
       AVG(targeted_sales) AS targeted_mean,
       VAR_SAMP(targeted_sales) AS targeted_var
FROM per_shopper
GROUP BY grp
"""  # noqa: S608


def plays_sql(ref: str) -> str:
    # A voided win is rewritten: one play counts once, voided if any of its rows is.
    return f"""
WITH p AS (
  SELECT play_id, MIN(retailer_id) AS retailer_id, MIN(shopper_id) AS shopper_id,
         MIN(played_at) AS played_at,
         MAX(CASE WHEN won THEN 1 ELSE 0 END) AS won,
         MAX(CASE WHEN voided THEN 1 ELSE 0 END) AS voided,
         MAX(CAST(COALESCE(prize_value, 0) AS FLOAT64)) AS prize_value
  FROM {ref}.plays
  WHERE campaign_id = @campaign_id AND retailer_id IN UNNEST(JSON_VALUE_ARRAY(@retailers))
    AND played_at >= @starts
  GROUP BY play_id
)
SELECT CAST(played_at AS DATE) AS day,
       COUNT(*) AS plays,
       SUM(won * (1 - voided)) AS wins,
       SUM(won * voided) AS voided_wins,
       SUM(won * (1 - voided) * prize_value) AS cost
FROM p
GROUP BY day
ORDER BY day
"""  # noqa: S608


def players_sql(ref: str) -> str:
    return f"""
SELECT COUNT(DISTINCT CONCAT(retailer_id, '/', shopper_id)) AS players
FROM {ref}.plays
WHERE campaign_id = @campaign_id AND retailer_id IN UNNEST(JSON_VALUE_ARRAY(@retailers))
  AND played_at >= @starts
"""  # noqa: S608


def sales_sql(ref: str) -> str:
    return f"""
SELECT CAST(s.occurred_at AS DATE) AS day,
       SUM(CAST(s.amount AS FLOAT64)) AS amount,
       SUM(s.quantity) AS quantity,
       COUNT(DISTINCT CONCAT(s.retailer_id, '/', s.order_id)) AS orders
FROM {ref}.sold_products s
WHERE {_scope("s")} AND {_targeted("s")}
GROUP BY day
ORDER BY day
"""  # noqa: S608


def buyers_sql(ref: str) -> str:
    return f"""
SELECT COUNT(DISTINCT CONCAT(s.retailer_id, '/', s.shopper_id)) AS buyers
FROM {ref}.sold_products s
WHERE {_scope("s")} AND {_targeted("s")}
"""  # noqa: S608


def _journey_scope(alias: str = "") -> str:
    """A journey table's rows of the campaign at its retailers (a shopper is a retailer's
    customer: ``retailer_id`` and ``shopper_id`` together, as everywhere)."""
    a = f"{alias}." if alias else ""
    return (
        f"{a}campaign_id = @campaign_id AND {a}retailer_id IN UNNEST(JSON_VALUE_ARRAY(@retailers))"
    )


def journey_sql(ref: str) -> str:
    return f"""
SELECT
  (SELECT COUNT(*) FROM {ref}.journey_campaign_shoppers WHERE {_journey_scope()})
    AS reached_shoppers,
  (SELECT COUNT(*) FROM {ref}.journey_coupon_redemptions WHERE {_journey_scope()})
    AS redemptions,
  (SELECT COUNT(DISTINCT CONCAT(retailer_id, '/', shopper_id))
    FROM {ref}.journey_coupon_redemptions WHERE {_journey_scope()}) AS redeeming_shoppers
"""  # noqa: S608


def journey_products_sql(ref: str) -> str:
    """Sales of the campaign's own products (its coupons' products, without the brands
    the import adds), in all and by the shoppers the data set says it reached."""
    return f"""
WITH lines AS (
  SELECT s.retailer_id, s.shopper_id, CAST(s.amount AS FLOAT64) AS amount
  FROM {ref}.sold_products s
  WHERE {_scope("s")} AND s.product_id IN UNNEST(JSON_VALUE_ARRAY(@products))
),
reached AS (
  SELECT DISTINCT retailer_id, shopper_id FROM {ref}.journey_campaign_shoppers
  WHERE {_journey_scope()}
)
SELECT SUM(l.amount) AS amount,
       COUNT(DISTINCT CONCAT(l.retailer_id, '/', l.shopper_id)) AS buyers,
       SUM(CASE WHEN r.shopper_id IS NOT NULL THEN l.amount ELSE 0 END) AS reached_amount,
       COUNT(DISTINCT CASE WHEN r.shopper_id IS NOT NULL
                           THEN CONCAT(l.retailer_id, '/', l.shopper_id) END)
         AS reached_buyers
FROM lines l
LEFT JOIN reached r ON r.retailer_id = l.retailer_id AND r.shopper_id = l.shopper_id
"""  # noqa: S608


# --- figures ---------------------------------------------------------------------------


def _num(value: Any, digits: int = 4) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else round(number, digits)


def _int(value: Any) -> int:
    return int(value or 0)


def uplift(
    exposed: Mapping[str, Any] | None,
    held_out: Mapping[str, Any] | None,
    mean: str,
    var: str,
    n: str,
) -> dict[str, Any]:
    """Exposed minus held-out mean, relative to the held-out mean, with a 95% interval."""

    def side(row: Mapping[str, Any] | None) -> dict[str, Any]:
        if row is None:
            return {"shoppers": 0, "mean": None, "sd": None}
        variance = row.get(var)
        return {
            "shoppers": _int(row.get(n)),
            "mean": _num(row.get(mean)),
            "sd": _num(math.sqrt(variance)) if variance is not None else None,
        }

    result: dict[str, Any] = {
        "exposed": side(exposed),
        "held_out": side(held_out),
        "difference": None,
        "relative": None,
        "ci95": None,
        "computable": False,
        "reason": None,
        "method": "difference of means, Welch normal approximation (z = 1.96)",
    }
    if held_out is None or _int(held_out.get(n)) == 0:
        result["reason"] = "no held-out shopper: without a control group uplift is not computable"
        return result
    if exposed is None or _int(exposed.get(n)) == 0:
        result["reason"] = "no exposed shopper"
        return result
    n_e, n_h = _int(exposed.get(n)), _int(held_out.get(n))
    m_e, m_h = float(exposed[mean]), float(held_out[mean])
    result["difference"] = _num(m_e - m_h)
    result["relative"] = _num((m_e - m_h) / m_h) if m_h else None
    if n_e < 2 or n_h < 2 or exposed.get(var) is None or held_out.get(var) is None:
        result["reason"] = "fewer than 2 shoppers in a group: no confidence interval"
        return result
    _, low, high = welch_interval(m_e, float(exposed[var]), n_e, m_h, float(held_out[var]), n_h)
    result["ci95"] = [_num(low), _num(high)]
    result["computable"] = True
    return result


def uplifts(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Both uplifts of a campaign from its groups (the rows of ``groups_sql``, by ``grp``):
    basket value among buyers, and targeted sales per eligible shopper. The report calls
    this, and so does the test that checks it recovers a known effect
    (``tests/unit/test_uplift_recovery.py``)."""
    exposed, held = groups.get("exposed"), groups.get("held_out")
    return {
        "basket_value": uplift(exposed, held, "basket_mean", "basket_var", "buyers"),
        "targeted_sales": uplift(exposed, held, "targeted_mean", "targeted_var", "shoppers"),
    }


def _day(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def query_params(campaign: Campaign, now: datetime) -> dict[str, Any]:
    """The queries' parameters: the campaign, its retailers, targeting and period (to now)."""
    return {
        "campaign_id": campaign.campaign_id,
        "retailers": json.dumps(sorted(campaign.retailer_ids)),
        "products": json.dumps(campaign.targeted_product_ids),
        "brands": json.dumps(campaign.targeted_brands),
        "categories": json.dumps(campaign.targeted_categories),
        "starts": campaign.starts_at.astimezone(UTC),
        "ends": min(campaign.ends_at, now).astimezone(UTC),
    }


def measured_uplifts(
    campaign: Campaign, warehouse: ReportWarehouse, project: str, dataset: str, now: datetime
) -> dict[str, dict[str, Any]]:
    """Only the report's uplifts (one query): what the demo sets beside the truth."""
    rows = warehouse.query(groups_sql(f"`{project}.{dataset}`"), query_params(campaign, now))
    return uplifts({row["grp"]: row for row in rows})


def campaign_report(
    campaign: Campaign, warehouse: ReportWarehouse, project: str, dataset: str, now: datetime
) -> dict[str, Any]:
    """The report of one campaign (``GET /v1/campaigns/{id}/report``, ``cartwise report``)."""
    ref = f"`{project}.{dataset}`"
    until = min(campaign.ends_at, now)
    params = query_params(campaign, now)
    not_available: list[str] = []
    if now < campaign.starts_at:
        not_available.append("everything: the campaign has not started yet")
    exposure = warehouse.query(exposure_sql(ref), params)[0]
    groups = {row["grp"]: row for row in warehouse.query(groups_sql(ref), params)}
    daily_plays = warehouse.query(plays_sql(ref), params)
    players = _int(warehouse.query(players_sql(ref), params)[0]["players"])
    daily_sales = warehouse.query(sales_sql(ref), params)
    buyers = _int(warehouse.query(buyers_sql(ref), params)[0]["buyers"])

    impressions, clicks = _int(exposure["impressions"]), _int(exposure["clicks"])
    exposed, held = groups.get("exposed"), groups.get("held_out")
    n_exposed = _int(exposed["shoppers"]) if exposed else 0
    n_held = _int(held["shoppers"]) if held else 0
    n_mixed = _int(groups["mixed"]["shoppers"]) if "mixed" in groups else 0
    if not groups:
        not_available.append(
            "eligible and held-out shoppers: no decision of the engine names this campaign"
        )
    if impressions == 0:
        not_available.append("impressions and clicks: no impression recorded for this campaign")

    plays = sum(_int(r["plays"]) for r in daily_plays)
    wins = sum(_int(r["wins"]) for r in daily_plays)
    cost = sum(float(r["cost"] or 0) for r in daily_plays)
    if campaign.experience_type == "gamified_promotion" and plays == 0:
        not_available.append("participation: no play recorded for this campaign")

    journey: dict[str, Any] | None = None
    if (campaign.origin or "").startswith("completejourney:"):
        row = warehouse.query(journey_sql(ref), params)[0]
        own = warehouse.query(journey_products_sql(ref), params)[0]
        journey = {
            "coupon_products_sales": {
                "amount": round(float(own["amount"] or 0), 2),
                "buyers": _int(own["buyers"]),
                "amount_by_reached_shoppers": round(float(own["reached_amount"] or 0), 2),
                "reached_buyers": _int(own["reached_buyers"]),
            },
            "reached_shoppers": _int(row["reached_shoppers"]),
            "redemptions": _int(row["redemptions"]),
            "redeeming_shoppers": _int(row["redeeming_shoppers"]),
            "participation_rate": _num(
                _int(row["redeeming_shoppers"]) / _int(row["reached_shoppers"])
            )
            if _int(row["reached_shoppers"])
            else None,
            "note": "from the Complete Journey data set: shoppers it says the campaign reached, "
            "the coupons they redeemed (participation) and the sales of the coupons' own "
            "products; the data set has no control group (reached shoppers were chosen, "
            "not drawn at random), so no uplift is computed from it",
        }

    by_day: dict[str, dict[str, Any]] = {}
    for r in daily_sales:
        by_day.setdefault(_day(r["day"]), {})["targeted_sales"] = _num(r["amount"], 2)
    for r in daily_plays:
        by_day.setdefault(_day(r["day"]), {})["cost"] = _num(r["cost"], 2)
    cumulative = 0.0
    daily = []
    for day in sorted(by_day):
        cumulative += by_day[day].get("cost") or 0.0
        daily.append(
            {
                "day": day,
                "targeted_sales": by_day[day].get("targeted_sales") or 0.0,
                "cost": by_day[day].get("cost") or 0.0,
                "cost_cumulative": round(cumulative, 2),
            }
        )

    budget = float(campaign.budget) if campaign.budget is not None else None
    measured = uplifts(groups)
    basket, targeted = measured["basket_value"], measured["targeted_sales"]
    for name, metric in (("basket value", basket), ("targeted sales", targeted)):
        if metric["reason"]:
            not_available.append(f"uplift in {name}: {metric['reason']}")
    return {
        "campaign": {
            "campaign_id": campaign.campaign_id,
            "name": campaign.name,
            "brand": campaign.brand,
            "status": campaign.status,
            "experience_type": campaign.experience_type,
            "retailer_ids": sorted(campaign.retailer_ids),
            "starts_at": campaign.starts_at.isoformat(),
            "ends_at": campaign.ends_at.isoformat(),
            "control_share": campaign.control_share,
            "budget": budget,
            "origin": campaign.origin,
        },
        "period": {"from": campaign.starts_at.isoformat(), "to": until.isoformat()},
        "exposure": {
            "impressions": impressions,
            "clicks": clicks,
            "click_through_rate": _num(clicks / impressions) if impressions else None,
            "shoppers_reached": _int(exposure["shoppers_reached"]),
        },
        "shoppers": {
            "eligible": n_exposed + n_held + n_mixed,
            "exposed": n_exposed,
            "held_out": n_held,
            "mixed_left_out": n_mixed,
            "held_out_share": _num(n_held / (n_exposed + n_held)) if n_exposed + n_held else None,
        },
        "participation": {
            "plays": plays,
            "players": players,
            "participation_rate": _num(players / n_exposed) if n_exposed else None,
            "wins": wins,
            "voided_wins": sum(_int(r["voided_wins"]) for r in daily_plays),
            "cost": round(cost, 2),
            "budget_consumed_share": _num(cost / budget) if budget else None,
        },
        "targeted_sales": {
            "amount": round(sum(float(r["amount"] or 0) for r in daily_sales), 2),
            "quantity": sum(_int(r["quantity"]) for r in daily_sales),
            "orders": sum(_int(r["orders"]) for r in daily_sales),
            "buyers": buyers,
        },
        "uplift": {"basket_value": basket, "targeted_sales": targeted},
        "daily": daily,
        "journey": journey,
        "not_available": not_available,
        "computed_at": now.isoformat(),
    }


def money(value: float | Decimal | None) -> str:
    return "-" if value is None else f"{float(value):,.2f}"


def format_report(report: Mapping[str, Any]) -> str:
    """The report as plain text (``cartwise report``)."""
    c, e, s, p, t = (
        report["campaign"],
        report["exposure"],
        report["shoppers"],
        report["participation"],
        report["targeted_sales"],
    )
    lines = [
        f"campaign {c['campaign_id']}: {c['name']} ({c['experience_type']}, {c['status']})",
        f"retailers {', '.join(c['retailer_ids'])}; period {report['period']['from']} "
        f"-> {report['period']['to']}",
        f"impressions {e['impressions']:,}  clicks {e['clicks']:,}  "
        f"shoppers reached {e['shoppers_reached']:,}",
        f"eligible shoppers {s['eligible']:,}  exposed {s['exposed']:,}  "
        f"held out {s['held_out']:,}",
        f"plays {p['plays']:,}  players {p['players']:,}  wins {p['wins']:,} "
        f"(voided {p['voided_wins']:,})  cost {money(p['cost'])}  budget {money(c['budget'])}",
        f"targeted sales {money(t['amount'])} ({t['quantity']:,} items, {t['orders']:,} orders, "
        f"{t['buyers']:,} buyers)",
    ]
    for name, metric in report["uplift"].items():
        if metric["computable"]:
            low, high = metric["ci95"]
            lines.append(
                f"uplift {name.replace('_', ' ')}: {metric['difference']:+.2f} per shopper "
                f"(95% CI {low:+.2f} .. {high:+.2f}; exposed {metric['exposed']['shoppers']}, "
                f"held out {metric['held_out']['shoppers']})"
            )
    if report.get("journey"):
        j = report["journey"]
        own = j["coupon_products_sales"]
        lines.append(
            f"Complete Journey: {j['reached_shoppers']:,} shoppers reached, "
            f"{j['redemptions']:,} coupon redemptions by {j['redeeming_shoppers']:,} shoppers; "
            f"the coupons' own products sold {money(own['amount'])} to {own['buyers']:,} "
            f"buyers, {money(own['amount_by_reached_shoppers'])} of it to "
            f"{own['reached_buyers']:,} reached shoppers"
        )
    for item in report["not_available"]:
        lines.append(f"not available: {item}")
    return "\n".join(lines)
