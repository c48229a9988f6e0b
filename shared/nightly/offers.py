"""The nightly's feedback loop: learn the offer policy from what shoppers did when shown.

``learn_offer_policy`` (the ``offer_policy`` step, after the ranker's gate):

1. writes the personalized promotions' targets (``nightly_offer_targets``);
2. reads the logs of the last ``LOG_WEEKS`` whole weeks (``offer_rows_sql``): per shopper,
   campaign and ISO week, the first decision on the promotion (shown, with the level, the
   policy's level and the logged propensity; or held out), the shopper's behaviour in the
   8 weeks before that week (``OFFER_FEATURES``) and the targeted sales from that decision
   to the week's end; the discount is the promotion's rule on them (generosity times the
   targeted sales, once they reach the level's threshold);
3. fits the uplift model (``shared.offers.learning.UpliftModel``) on the shoppers outside
   a seeded 30 % hash sample, and judges on that sample the learnt policy against the
   policy in force (the level each logged decision's policy chose), doubly robust with the
   logged propensities: the gate (``shared.offers.learning.gate``), with the Qini
   coefficients;
4. when the gate passes, writes ``offer_policy.json`` to the run's artifacts; the shards
   then compute each scored shopper's features towards each live promotion
   (``shopper_features_sql``, ``shopper_offer_features``) and the trees take the learnt
   level (``learnt:<run_id>``) within each campaign's bounds. Otherwise the trees keep
   today's rules.

Only behaviour (orders, lines, decisions) is read: no socio-demographic input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shared.campaigns.model import Campaign
from shared.nightly.context import StepContext
from shared.nightly.features import end_of_history, shard_shoppers_sql, table_ref
from shared.nightly.shards import BUCKET
from shared.nightly.tables import (
    NIGHTLY_OFFER_TARGETS,
    NIGHTLY_SHOPPERS,
    OFFER_FEATURES,
    SHOPPER_OFFER_FEATURES,
)
from shared.nightly.training import artifact
from shared.offers.learning import (
    CONTROL,
    OfferLogs,
    OfferPolicy,
    UpliftModel,
    choose,
    gate,
    policy_value,
    qini,
)
from shared.offers.levels import OfferLevel, offer_levels
from shared.platform.warehouse import Row

log = logging.getLogger(__name__)

FEATURES = tuple(c.name for c in OFFER_FEATURES)
HISTORY_DAYS = 56
LOG_WEEKS = 12
JUDGE_SHARE = 0.3
MARGIN = 0.3  # the retailer's margin on incremental targeted sales (a setting to come)
MIN_ROWS = 200  # held-out and offered rows each, below which nothing is learnt
ARTIFACT = "offer_policy.json"
PROMOTION = "personalized_promotion"


def promotions(campaigns: Iterable[Campaign]) -> list[Campaign]:
    return sorted(
        (c for c in campaigns if c.experience_type == PROMOTION), key=lambda c: c.campaign_id
    )


def target_rows(campaigns: Iterable[Campaign]) -> list[Row]:
    """One row per promotion, retailer and targeted product, brand or category."""
    rows: list[Row] = []
    for c in promotions(campaigns):
        for retailer in c.retailer_ids:
            base = {"campaign_id": c.campaign_id, "retailer_id": retailer}
            rows += [base | {"product_id": p} for p in c.targeted_product_ids]
            rows += [base | {"brand": b} for b in c.targeted_brands]
            rows += [base | {"category": k} for k in c.targeted_categories]
    return [{"product_id": None, "brand": None, "category": None} | r for r in rows]


def _week_start(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).date()
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def _week(moment: str) -> str:
    """The Monday-based week number of a timestamp (weeks since Monday 1969-12-29). Written
    with FLOOR, not DIV: bqemulator evaluates ``DIV(UNIX_DATE(d) + 3, 7)`` as the
    undivided sum (BigQuery divides)."""
    return f"CAST(FLOOR((UNIX_DATE(DATE({moment})) + 3) / 7) AS INT64)"


def _sold_ctes(ctx: StepContext, where: str = "TRUE") -> str:
    """``sold``: lines between @sold_since and @sold_until (of the shoppers ``where``
    keeps); ``hits``: the lines each promotion targets (three equi-joins: product, brand,
    category)."""
    sold = table_ref(ctx, "sold_products")
    targets = table_ref(ctx, NIGHTLY_OFFER_TARGETS.name)
    hit = (
        "SELECT s.retailer_id, s.order_id, s.line_number, t.campaign_id FROM sold s "
        f"JOIN {targets} t ON t.run_id = @run_id AND t.retailer_id = s.retailer_id "
    )
    return f"""sold AS (
  SELECT retailer_id, shopper_id, order_id, line_number, product_id, brand, category,
         occurred_at, CAST(amount AS FLOAT64) AS amount, discount > 0 AS promoted
  FROM {sold} WHERE occurred_at >= @sold_since AND occurred_at < @sold_until AND ({where})
), hits AS (
  {hit}AND t.product_id = s.product_id
  UNION DISTINCT {hit}AND t.brand = s.brand
  UNION DISTINCT {hit}AND t.category = s.category
)"""


def _features_cte() -> str:
    """``features`` of ``anchors`` (retailer_id, shopper_id, campaign_id, as_of): the
    shopper's behaviour in the ``HISTORY_DAYS`` before ``as_of``."""
    weeks = HISTORY_DAYS / 7
    return f"""features AS (
  SELECT a.retailer_id, a.shopper_id, a.campaign_id, a.as_of,
    COUNT(DISTINCT IF(h.campaign_id IS NOT NULL,
                      {_week("s.occurred_at")}, NULL)) / {weeks}
      AS targeted_weeks_share,
    COALESCE(SUM(IF(h.campaign_id IS NOT NULL, s.amount, 0)), 0) / {weeks}
      AS targeted_weekly_sales,
    COUNT(DISTINCT s.order_id) / {weeks} AS orders_per_week,
    COALESCE(SAFE_DIVIDE(SUM(s.amount), COUNT(DISTINCT s.order_id)), 0) AS basket_mean,
    COALESCE(SAFE_DIVIDE(SUM(IF(s.promoted, s.amount, 0)), SUM(s.amount)), 0)
      AS promotion_share
  FROM anchors a
  LEFT JOIN sold s ON s.retailer_id = a.retailer_id AND s.shopper_id = a.shopper_id
    AND s.occurred_at >= TIMESTAMP_SUB(a.as_of, INTERVAL {HISTORY_DAYS} DAY)
    AND s.occurred_at < a.as_of
  LEFT JOIN hits h ON h.retailer_id = s.retailer_id AND h.order_id = s.order_id
    AND h.line_number = s.line_number AND h.campaign_id = a.campaign_id
  GROUP BY a.retailer_id, a.shopper_id, a.campaign_id, a.as_of
)"""


def offer_rows_sql(ctx: StepContext) -> str:
    """The learning rows: one per shopper, promotion and ISO week with a decision on it."""
    experiences = table_ref(ctx, "decision_experiences")
    week = _week("occurred_at")
    return f"""WITH first AS (
  SELECT * FROM (
    SELECT retailer_id, shopper_id, campaign_id, occurred_at, outcome, offer_level,
           offer_policy_level, offer_chosen_by, offer_propensity, {week} AS week,
           ROW_NUMBER() OVER (PARTITION BY retailer_id, shopper_id, campaign_id, {week}
                              ORDER BY occurred_at, row_id) AS n
    FROM {experiences}
    WHERE experience_type = '{PROMOTION}' AND outcome IN ('shown', 'held_out')
      AND occurred_at >= @logs_since AND occurred_at < @logs_until
  ) WHERE n = 1 AND (outcome = 'held_out' OR offer_propensity IS NOT NULL)
), anchors AS (
  SELECT DISTINCT retailer_id, shopper_id, campaign_id,
         TIMESTAMP_SECONDS((week * 7 - 3) * 86400) AS as_of
  FROM first
), {_sold_ctes(ctx)}, {_features_cte()}, outcome AS (
  SELECT f.retailer_id, f.shopper_id, f.campaign_id, f.week,
         COALESCE(SUM(IF(h.campaign_id IS NOT NULL, s.amount, 0)), 0) AS sales
  FROM first f
  LEFT JOIN sold s ON s.retailer_id = f.retailer_id AND s.shopper_id = f.shopper_id
    AND s.occurred_at >= f.occurred_at
    AND s.occurred_at < TIMESTAMP_SECONDS(((f.week + 1) * 7 - 3) * 86400)
  LEFT JOIN hits h ON h.retailer_id = s.retailer_id AND h.order_id = s.order_id
    AND h.line_number = s.line_number AND h.campaign_id = f.campaign_id
  GROUP BY f.retailer_id, f.shopper_id, f.campaign_id, f.week
)
SELECT f.retailer_id, f.shopper_id, f.campaign_id, f.week, f.outcome, f.offer_level,
       f.offer_policy_level, f.offer_chosen_by, f.offer_propensity, o.sales,
       {", ".join(f"x.{name}" for name in FEATURES)}
FROM first f
JOIN outcome o ON o.retailer_id = f.retailer_id AND o.shopper_id = f.shopper_id
  AND o.campaign_id = f.campaign_id AND o.week = f.week
JOIN features x ON x.retailer_id = f.retailer_id AND x.shopper_id = f.shopper_id
  AND x.campaign_id = f.campaign_id
  AND x.as_of = TIMESTAMP_SECONDS((f.week * 7 - 3) * 86400)"""


def shopper_features_sql(ctx: StepContext, where: str) -> str:
    """The shard's scored shoppers' features towards each live promotion of their retailer,
    as of the run's end of history (@as_of), for ``shopper_offer_features``."""
    shoppers = table_ref(ctx, NIGHTLY_SHOPPERS.name)
    targets = table_ref(ctx, NIGHTLY_OFFER_TARGETS.name)
    return f"""WITH anchors AS (
  SELECT DISTINCT p.retailer_id, p.shopper_id, t.campaign_id, @as_of AS as_of
  FROM {shoppers} p JOIN {targets} t ON t.run_id = @run_id AND t.retailer_id = p.retailer_id
  WHERE p.run_id = @run_id AND p.role = 'score' AND {where}
), {_sold_ctes(ctx, "shopper_id IN (SELECT shopper_id FROM anchors)")}, {_features_cte()}
SELECT retailer_id, shopper_id, campaign_id, {", ".join(FEATURES)} FROM features"""


def shopper_features_params(ctx: StepContext) -> dict[str, Any]:
    end = end_of_history(ctx.cutoff)
    return {
        "run_id": ctx.run_id,
        "as_of": end,
        "sold_since": end - timedelta(days=HISTORY_DAYS),
        "sold_until": end,
    }


def _judged(retailer: str, shopper: str) -> bool:
    digest = hashlib.sha256(f"cartwise-offer-judge/{retailer}/{shopper}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < JUDGE_SHARE


def campaign_levels(campaign: Campaign) -> tuple[OfferLevel, ...]:
    return offer_levels(
        campaign.generosity_pct, campaign.generosity_min_pct, with_threshold=campaign.threshold > 0
    )


def allowed_levels(
    levels: Sequence[OfferLevel], bounds: Sequence[Iterable[OfferLevel]]
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """(rows x levels): which of ``levels`` lie within each row's campaign's levels."""
    index = {level: i for i, level in enumerate(levels)}
    allowed = np.zeros((len(bounds), len(levels)), dtype=bool)
    for row, own in enumerate(bounds):
        for level in own:
            if level in index:
                allowed[row, index[level]] = True
    return allowed


def logs_of(
    rows: Sequence[Row], campaigns: Mapping[str, Campaign]
) -> tuple[OfferLogs, tuple[OfferLevel, ...], np.ndarray[Any, np.dtype[np.int64]], list[Any]]:
    """The rows as ``OfferLogs`` (levels: every level logged or within a campaign's
    bounds), the policy-in-force's level per row, and each row's campaign levels."""
    bounds: dict[str, set[OfferLevel]] = {
        cid: set(campaign_levels(c)) for cid, c in campaigns.items()
    }
    for row in rows:
        for name in (row["offer_level"], row["offer_policy_level"]):
            if name:
                bounds.setdefault(row["campaign_id"], set()).add(OfferLevel.parse(name))
    levels = tuple(
        sorted(
            {level for own in bounds.values() for level in own},
            key=lambda v: (v.generosity_pct, v.threshold_factor),
        )
    )
    index = {level: i for i, level in enumerate(levels)}
    arm, current, propensity, explored, sales, discount = [], [], [], [], [], []
    for row in rows:
        value = float(row["sales"] or 0)
        held = row["outcome"] == "held_out"
        shown = None if held else OfferLevel.parse(row["offer_level"])
        campaign = campaigns.get(row["campaign_id"])
        threshold = float(campaign.threshold) if campaign else 0.0
        arm.append(CONTROL if shown is None else index[shown])
        policy_level = row["offer_policy_level"]
        current.append(index[OfferLevel.parse(policy_level)] if policy_level else -1)
        propensity.append(1.0 if held else float(row["offer_propensity"]))
        explored.append(row["offer_chosen_by"] == "explore")
        sales.append(value)
        reached = shown is not None and value >= threshold * float(shown.threshold_factor)
        discount.append(float(shown.generosity_pct) / 100 * value if shown and reached else 0.0)
    features = np.array(
        [[float(row[name] or 0) for name in FEATURES] for row in rows], dtype=np.float64
    ).reshape(len(rows), len(FEATURES))
    logs = OfferLogs(
        features,
        np.array(arm, dtype=np.int64),
        np.array(propensity),
        np.array(explored, dtype=bool),
        np.array(sales),
        np.array(discount),
    )
    row_bounds = [sorted(bounds.get(row["campaign_id"], ()), key=str) for row in rows]
    return logs, levels, np.array(current, dtype=np.int64), row_bounds


def offer_rows(ctx: StepContext) -> tuple[list[Row], datetime, datetime]:
    """The learning rows of the ``LOG_WEEKS`` whole weeks before the run's end of history
    (and that window's bounds)."""
    until = _week_start(end_of_history(ctx.cutoff))
    since = until - timedelta(weeks=LOG_WEEKS)
    rows = ctx.warehouse.query(
        offer_rows_sql(ctx),
        {
            "run_id": ctx.run_id,
            "logs_since": since,
            "logs_until": until,
            "sold_since": since - timedelta(days=HISTORY_DAYS),
            "sold_until": until,
        },
    )
    # The warehouse returns rows in no set order, and the model's trees follow the order of
    # its rows: sorted, the same logs learn the same policy.
    rows.sort(key=lambda r: (r["retailer_id"], r["shopper_id"], r["campaign_id"], r["week"]))
    return rows, since, until


def budget_multiplier(
    policy: OfferPolicy,
    rows: Sequence[Row],
    logs: OfferLogs,
    levels: Sequence[OfferLevel],
    bounds: Sequence[Iterable[OfferLevel]],
    campaign: Campaign,
    now: datetime,
) -> float | None:
    """The multiplier on the discount that keeps the campaign's expected weekly discount,
    over the shoppers it offered in the last logged week, within its budget spread over the
    weeks it has left (``None``: no budget, ended, or no offer logged)."""
    if campaign.budget is None or campaign.ends_at <= now or not rows:
        return None
    weeks = [int(r["week"]) for r in rows if r["campaign_id"] == campaign.campaign_id]
    if not weeks:
        return None
    last = max(weeks)
    index = [
        i
        for i, r in enumerate(rows)
        if r["campaign_id"] == campaign.campaign_id
        and int(r["week"]) == last
        and r["outcome"] == "shown"
    ]
    if not index:
        return None
    weeks_left = max(1, math.ceil((campaign.ends_at - now) / timedelta(weeks=1)))
    uplift, cost = policy.model.predict(logs.features[index])
    return choose(
        uplift,
        cost,
        margin=policy.margin,
        budget=float(campaign.budget) / weeks_left,
        allowed=allowed_levels(levels, [bounds[i] for i in index]),
    ).budget_multiplier


def learn_offer_policy(ctx: StepContext, campaigns: Sequence[Campaign]) -> dict[str, Any]:
    """The ``offer_policy`` step: learn, judge, and publish the policy when it beats the
    one in force on held-out shoppers (the summary says which policy the trees take)."""
    started = time.monotonic()
    ctx.warehouse.replace_rows(
        NIGHTLY_OFFER_TARGETS.name,
        ctx.run_id,
        [{"run_id": ctx.run_id} | r for r in target_rows(campaigns)],
    )
    rows, since, until = offer_rows(ctx)
    summary: dict[str, Any] = {
        "policy": "rules",
        "published": False,
        "rows": len(rows),
        "logs_since": since.isoformat(),
        "logs_until": until.isoformat(),
    }
    by_id = {c.campaign_id: c for c in promotions(campaigns)}
    logs, levels, current, bounds = logs_of(rows, by_id)
    judged = np.array([_judged(r["retailer_id"], r["shopper_id"]) for r in rows], dtype=bool)
    learning = logs.take(~judged)
    held = int((learning.arm == CONTROL).sum())
    summary |= {"held_out_rows": held, "offered_rows": len(learning) - held}
    if held < MIN_ROWS or len(learning) - held < MIN_ROWS:
        summary["reason"] = f"too few logs to learn from (at least {MIN_ROWS} of each)"
        log.info("offer policy not learnt", extra={"summary": summary})
        return summary | {"seconds": round(time.monotonic() - started, 1)}
    model = UpliftModel.fit(learning, levels)
    policy = OfferPolicy(model, MARGIN)
    judge = logs.take(judged)
    judge_bounds = [b for b, j in zip(bounds, judged, strict=True) if j]
    new = policy.levels_for(judge.features, allowed_levels(levels, judge_bounds))
    in_force = current[judged]
    offered = judge.arm != CONTROL
    # A held-out row's policy level is unknown and unused (the estimates use offered rows).
    in_force = np.where(in_force < 0, new, in_force)
    verdict = gate(judge, new, in_force, model, margin=MARGIN)
    summary |= {
        "levels": [v.name for v in levels],
        "judged_rows": int(offered.sum()),
        "gate": verdict,
        "value_learnt": policy_value(judge, new, model, margin=MARGIN).__dict__,
        "value_in_force": policy_value(judge, in_force, model, margin=MARGIN).__dict__,
        "qini": qini(judge, model),
    }
    if verdict["gate_passed"]:
        weekly = {
            cid: budget_multiplier(policy, rows, logs, levels, bounds, campaign, until)
            for cid, campaign in by_id.items()
        }
        multipliers = {cid: lam for cid, lam in weekly.items() if lam is not None}
        policy = dataclasses.replace(policy, campaign_multipliers=multipliers)
        summary["budget_multipliers"] = multipliers
        ctx.artifacts.put(artifact(ctx.run_id, ARTIFACT), policy.to_json().encode())
        summary |= {"policy": f"learnt:{ctx.run_id}", "published": True}
    log.info("offer policy learnt", extra={"summary": summary})
    return summary | {"seconds": round(time.monotonic() - started, 1)}


def learnt_levels_batch(
    policy: OfferPolicy,
    campaigns: Mapping[str, Campaign],
    shoppers: Sequence[Mapping[str, Sequence[float]]],
) -> list[dict[str, OfferLevel]]:
    """Each shopper's level per live promotion (``shoppers[i]``: their features towards
    each), within each campaign's bounds: one prediction for the whole batch (the models
    are called once per batch of a shard, not once per shopper)."""
    pairs = [
        (i, cid)
        for i, features in enumerate(shoppers)
        for cid in sorted(features)
        if cid in campaigns
    ]
    result: list[dict[str, OfferLevel]] = [{} for _ in shoppers]
    if not pairs:
        return result
    levels = policy.model.levels
    matrix = np.array([list(shoppers[i][cid]) for i, cid in pairs], dtype=np.float64)
    bounds = {cid: campaign_levels(campaigns[cid]) for _, cid in pairs}
    allowed = allowed_levels(levels, [bounds[cid] for _, cid in pairs])
    multipliers = np.array(
        [policy.campaign_multipliers.get(cid, policy.budget_multiplier) for _, cid in pairs]
    )
    picked = policy.levels_for(matrix, allowed, multipliers)
    for (i, cid), k, row in zip(pairs, picked, allowed, strict=True):
        if row.any():  # a campaign whose levels the model never saw keeps its rules
            result[i][cid] = levels[int(k)]
    return result


def learnt_levels(
    policy: OfferPolicy,
    campaigns: Mapping[str, Campaign],
    features: Mapping[str, Sequence[float]],
) -> dict[str, OfferLevel]:
    """One shopper's level per live promotion (``features``: theirs towards each)."""
    return learnt_levels_batch(policy, campaigns, [features])[0]


def write_shopper_features(ctx: StepContext, where: str) -> int:
    """The shard's rows of ``shopper_offer_features`` (``where``: its shoppers), replaced."""
    target = table_ref(ctx, SHOPPER_OFFER_FEATURES.name)
    ctx.warehouse.execute(
        f"DELETE FROM {target} WHERE run_id = @run_id AND ({where})", {"run_id": ctx.run_id}
    )
    columns = f"retailer_id, shopper_id, {BUCKET}, campaign_id, {', '.join(FEATURES)}"
    ctx.warehouse.execute(
        f"INSERT INTO {target} (run_id, {columns})\n"
        f"SELECT @run_id, {columns} FROM ({shopper_features_sql(ctx, where)}) "
        f"JOIN ({shard_shoppers_sql(ctx, where)}) USING (retailer_id, shopper_id)",
        shopper_features_params(ctx),
    )
    rows = ctx.warehouse.query(
        f"SELECT COUNT(*) AS n FROM {target} WHERE run_id = @run_id AND ({where})",
        {"run_id": ctx.run_id},
    )
    return int(rows[0]["n"])


def load_policy(ctx: StepContext) -> OfferPolicy:
    return OfferPolicy.from_json(ctx.artifacts.get(artifact(ctx.run_id, ARTIFACT)))
