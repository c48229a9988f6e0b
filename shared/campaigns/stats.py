"""The portfolio's figures: every campaign's exposure, spend and uplift, in one query.

The back office lists hundreds of campaigns with, for each, what a CSM scans first: shown
and held-out shoppers, budget spent, and the uplift in targeted sales with its interval
(docs/CAMPAIGNS.md, "The portfolio"). A report (``report.py``) runs six queries for one
campaign; the list cannot run that for each row on each page view. So a scheduled job
(``refresh_campaign_stats``, every 5 minutes) computes every campaign's figures in **one**
BigQuery query and saves them (``CampaignStatsStore``: Firestore, one document per
campaign); the pages read the saved figures, and say how old they are.

The query takes the campaigns as three JSON parameters (periods, retailers, targeting),
so that its cost follows the read models' rows in the campaigns' periods, not the number
of campaigns times the tables. Its figures are the report's, by construction: the same
groups (exposed, held out, mixed left out), the same targeted sales per eligible shopper
from the first decision on, the same plays net of voided wins
(``tests/integration/test_portfolio.py`` checks both against each other).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.campaigns.model import Campaign
from shared.campaigns.report import ReportWarehouse, uplift

RECENT = timedelta(hours=24)


class CampaignStats(BaseModel):
    """One campaign's figures as of ``computed_at``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: str
    computed_at: AwareDatetime
    exposed: int = Field(default=0, description="Shoppers shown it (never held out)")
    held_out: int = Field(default=0, description="Shoppers of its control group")
    shown_recently: int = Field(default=0, description="Decisions showing it, last 24 hours")
    last_shown_at: AwareDatetime | None = None
    spent: float = Field(default=0.0, description="Wins paid, net of voided (the budget's use)")
    uplift: float | None = Field(
        default=None, description="Targeted sales per eligible shopper, exposed minus held out"
    )
    uplift_low: float | None = None
    uplift_high: float | None = None
    uplift_note: str | None = Field(default=None, description="Why there is no interval")


class CampaignStatsStore(Protocol):
    def put_many(self, stats: Sequence[CampaignStats]) -> None: ...

    def all(self) -> dict[str, CampaignStats]: ...


def stats_sql(ref: str) -> str:
    """Every campaign of ``@periods`` at once; ``@scopes`` (campaign, retailer) and
    ``@targets`` (campaign, kind, value) are JSON arrays. Scans the decisions, sales and
    plays of the campaigns' retailers in their periods (partition-pruned on real BigQuery
    by the period bounds ``@since``/``@until``)."""
    return f"""
WITH periods AS (
  SELECT JSON_VALUE(p, '$.campaign_id') AS campaign_id,
         TIMESTAMP(JSON_VALUE(p, '$.starts')) AS starts,
         TIMESTAMP(JSON_VALUE(p, '$.ends')) AS ends
  FROM UNNEST(JSON_QUERY_ARRAY(@periods)) AS p
),
scopes AS (
  SELECT JSON_VALUE(s, '$.campaign_id') AS campaign_id,
         JSON_VALUE(s, '$.retailer_id') AS retailer_id
  FROM UNNEST(JSON_QUERY_ARRAY(@scopes)) AS s
),
targets AS (
  SELECT JSON_VALUE(t, '$.campaign_id') AS campaign_id, JSON_VALUE(t, '$.kind') AS kind,
         JSON_VALUE(t, '$.value') AS value
  FROM UNNEST(JSON_QUERY_ARRAY(@targets)) AS t
),
decided AS (
  SELECT d.campaign_id, d.retailer_id, d.shopper_id, d.outcome, d.occurred_at
  FROM {ref}.decision_experiences d
  JOIN periods p ON p.campaign_id = d.campaign_id
  JOIN scopes c ON c.campaign_id = d.campaign_id AND c.retailer_id = d.retailer_id
  WHERE d.outcome IN ('shown', 'held_out') AND d.occurred_at >= p.starts
    AND d.occurred_at < p.ends AND d.occurred_at >= @since AND d.occurred_at < @until
),
recent AS (
  SELECT campaign_id, COUNTIF(outcome = 'shown' AND occurred_at >= @recent) AS shown_recently,
         MAX(IF(outcome = 'shown', occurred_at, NULL)) AS last_shown_at
  FROM decided
  GROUP BY campaign_id
),
eligible AS (
  SELECT campaign_id, retailer_id, shopper_id, MIN(occurred_at) AS first_at,
         MAX(CASE WHEN outcome = 'held_out' THEN 1 ELSE 0 END) AS held,
         MAX(CASE WHEN outcome = 'shown' THEN 1 ELSE 0 END) AS shown
  FROM decided
  GROUP BY campaign_id, retailer_id, shopper_id
),
grouped AS (
  SELECT campaign_id, retailer_id, shopper_id, first_at,
         CASE WHEN held = 1 AND shown = 0 THEN 'held_out'
              WHEN shown = 1 AND held = 0 THEN 'exposed'
              ELSE 'mixed' END AS grp
  FROM eligible
),
sold AS (
  SELECT g.campaign_id, g.retailer_id, g.shopper_id, s.row_id,
         MAX(CAST(s.amount AS FLOAT64)) AS amount
  FROM grouped g
  JOIN periods p ON p.campaign_id = g.campaign_id
  JOIN {ref}.sold_products s ON s.retailer_id = g.retailer_id AND s.shopper_id = g.shopper_id
  JOIN targets t ON t.campaign_id = g.campaign_id
    AND ((t.kind = 'product' AND s.product_id = t.value)
      OR (t.kind = 'brand' AND s.brand = t.value)
      OR (t.kind = 'category' AND s.category = t.value))
  WHERE s.occurred_at >= g.first_at AND s.occurred_at >= p.starts AND s.occurred_at < p.ends
    AND s.occurred_at >= @since AND s.occurred_at < @until
  GROUP BY g.campaign_id, g.retailer_id, g.shopper_id, s.row_id
),
targeted AS (
  SELECT campaign_id, retailer_id, shopper_id, SUM(amount) AS amount
  FROM sold GROUP BY campaign_id, retailer_id, shopper_id
),
per_shopper AS (
  SELECT g.campaign_id, g.grp, COALESCE(t.amount, 0) AS targeted_sales
  FROM grouped g
  LEFT JOIN targeted t ON t.campaign_id = g.campaign_id AND t.retailer_id = g.retailer_id
    AND t.shopper_id = g.shopper_id
),
groups AS (
  SELECT campaign_id, grp, COUNT(*) AS shoppers, AVG(targeted_sales) AS targeted_mean,
         VAR_SAMP(targeted_sales) AS targeted_var
  FROM per_shopper GROUP BY campaign_id, grp
),
plays AS (
  SELECT pl.play_id, MIN(pl.campaign_id) AS campaign_id,
         MAX(CASE WHEN pl.won THEN 1 ELSE 0 END) AS won,
         MAX(CASE WHEN pl.voided THEN 1 ELSE 0 END) AS voided,
         MAX(CAST(COALESCE(pl.prize_value, 0) AS FLOAT64)) AS prize_value
  FROM {ref}.plays pl
  JOIN periods p ON p.campaign_id = pl.campaign_id
  JOIN scopes c ON c.campaign_id = pl.campaign_id AND c.retailer_id = pl.retailer_id
  WHERE pl.played_at >= p.starts AND pl.played_at >= @since
  GROUP BY pl.play_id
),
spent AS (
  SELECT campaign_id, SUM(won * (1 - voided) * prize_value) AS spent
  FROM plays GROUP BY campaign_id
)
SELECT 'group' AS part, campaign_id, grp, shoppers, targeted_mean, targeted_var,
       NULL AS shown_recently, CAST(NULL AS TIMESTAMP) AS last_shown_at,
       CAST(NULL AS FLOAT64) AS spent
FROM groups
UNION ALL
SELECT 'recent', campaign_id, NULL, NULL, NULL, NULL, shown_recently, last_shown_at, NULL
FROM recent
UNION ALL
SELECT 'spent', campaign_id, NULL, NULL, NULL, NULL, NULL, CAST(NULL AS TIMESTAMP), spent
FROM spent
"""  # noqa: S608 (identifiers from the declaration; values are parameters)


def stats_params(campaigns: Sequence[Campaign], now: datetime) -> dict[str, Any]:
    """The campaigns as the query's parameters: each over its period up to now."""
    periods, scopes, targets = [], [], []
    for c in campaigns:
        periods.append(
            {
                "campaign_id": c.campaign_id,
                "starts": c.starts_at.astimezone(UTC).isoformat(),
                "ends": min(c.ends_at, now).astimezone(UTC).isoformat(),
            }
        )
        scopes += [{"campaign_id": c.campaign_id, "retailer_id": r} for r in c.retailer_ids]
        for kind, values in (
            ("product", c.targeted_product_ids),
            ("brand", c.targeted_brands),
            ("category", c.targeted_categories),
        ):
            targets += [{"campaign_id": c.campaign_id, "kind": kind, "value": v} for v in values]
    since = min((c.starts_at for c in campaigns), default=now).astimezone(UTC)
    return {
        "periods": json.dumps(periods),
        "scopes": json.dumps(scopes),
        "targets": json.dumps(targets),
        "since": since,
        "until": now.astimezone(UTC),
        "recent": (now - RECENT).astimezone(UTC),
    }


def stats_from_rows(
    campaigns: Sequence[Campaign], rows: Sequence[Mapping[str, Any]], now: datetime
) -> list[CampaignStats]:
    """Each campaign's figures from the query's rows (a campaign with no row: zeros)."""
    groups: dict[str, dict[str, Mapping[str, Any]]] = {}
    recent: dict[str, Mapping[str, Any]] = {}
    spent: dict[str, float] = {}
    for row in rows:
        campaign_id = str(row["campaign_id"])
        if row["part"] == "group":
            groups.setdefault(campaign_id, {})[str(row["grp"])] = row
        elif row["part"] == "recent":
            recent[campaign_id] = row
        else:
            spent[campaign_id] = float(row["spent"] or 0)
    stats = []
    for c in campaigns:
        found = groups.get(c.campaign_id, {})
        measured = uplift(
            found.get("exposed"), found.get("held_out"), "targeted_mean", "targeted_var", "shoppers"
        )
        seen = recent.get(c.campaign_id, {})
        last = seen.get("last_shown_at")
        ci = measured["ci95"]
        stats.append(
            CampaignStats(
                campaign_id=c.campaign_id,
                computed_at=now,
                exposed=measured["exposed"]["shoppers"],
                held_out=measured["held_out"]["shoppers"],
                shown_recently=int(seen.get("shown_recently") or 0),
                last_shown_at=last.astimezone(UTC) if isinstance(last, datetime) else None,
                spent=round(spent.get(c.campaign_id, 0.0), 2),
                uplift=measured["difference"],
                uplift_low=ci[0] if ci else None,
                uplift_high=ci[1] if ci else None,
                uplift_note=measured["reason"],
            )
        )
    return stats


# A query request holds at most 10 MB, parameters included (BigQuery's quotas, "Maximum
# request size"): the campaigns go in groups of about 1 MB of parameters (a campaign can
# target thousands of products; one alone is its own group: a whole catalogue of 92,000
# products is about 6 MB).
REQUEST_LIMIT_BYTES = 10_000_000
MAX_PARAMETER_CHARS = 1_000_000


def _groups(campaigns: Sequence[Campaign]) -> list[list[Campaign]]:
    groups: list[list[Campaign]] = [[]]
    size = 0
    for c in campaigns:
        weight = 200 + sum(
            len(v) + 60
            for v in (*c.targeted_product_ids, *c.targeted_brands, *c.targeted_categories)
        )
        if groups[-1] and size + weight > MAX_PARAMETER_CHARS:
            groups.append([])
            size = 0
        groups[-1].append(c)
        size += weight
    return [g for g in groups if g]


def compute_stats(
    campaigns: Sequence[Campaign],
    warehouse: ReportWarehouse,
    project: str,
    dataset: str,
    now: datetime,
) -> list[CampaignStats]:
    """Every started campaign's figures: one query per group of campaigns (usually one;
    none when none has started)."""
    waiting = [CampaignStats(campaign_id=c.campaign_id, computed_at=now) for c in campaigns]
    measured: dict[str, CampaignStats] = {}
    for group in _groups([c for c in campaigns if c.starts_at <= now]):
        rows = warehouse.query(stats_sql(f"`{project}.{dataset}`"), stats_params(group, now))
        measured |= {s.campaign_id: s for s in stats_from_rows(group, rows, now)}
    return [measured.get(s.campaign_id, s) for s in waiting]


def openapi() -> dict[str, Any]:
    """The HTTP contract of ``refresh_campaign_stats`` (Cloud Scheduler's POST)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cartwise refresh_campaign_stats",
            "version": "1.0.0",
            "description": "Every non-archived campaign's figures for the back office's "
            "portfolio, in one BigQuery query, saved to Firestore campaign_stats "
            "(docs/CAMPAIGNS.md). Private: Cloud Scheduler's OIDC token only.",
        },
        "paths": {
            "/": {
                "post": {
                    "operationId": "refreshCampaignStats",
                    "responses": {
                        "200": {
                            "description": "Done: {campaigns, computed_at, seconds}",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "503": {"description": "A store is unavailable; the next run redoes it"},
                    },
                },
                "get": {
                    "operationId": "probe",
                    "responses": {"200": {"description": "Alive; nothing run"}},
                },
            },
            "/openapi.json": {
                "get": {"operationId": "openapi", "responses": {"200": {"description": "This"}}}
            },
        },
    }
