"""Features in the warehouse: candidates, their features and labels, at several boundaries.

A *boundary* is a moment: history is what happened before it, labels what happened in the
28 days after it. One run computes, in SQL over the cold read models (``sold_products``,
``orders``), the features at:

- ``train`` boundaries: 56, 84 and 112 days before the end of history, with labels (the
  shopper's first basket after the boundary, and every basket of the next 28 days);
- the ``evaluate`` boundary: 28 days before the end, labels from the held-out last 28
  days (never seen by training: every training label lies before it);
- the ``score`` boundary: the end of history, no label (tonight's predictions).

Candidates per shopper: the products of their history (the ``HISTORY_CANDIDATES`` with the
highest 56-day decayed count) and the retailer's most popular products of the last 28 days
(``POPULAR_CANDIDATES``). Features are behavioural only: no socio-demographic input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic

from shared.nightly.context import StepContext
from shared.nightly.shards import BUCKET, bucket_sql
from shared.nightly.tables import (
    CANDIDATE_FEATURES,
    NIGHTLY_CANDIDATES,
    NIGHTLY_SHOPPERS,
    SHOPPER_FEATURES,
)

log = logging.getLogger(__name__)

HORIZON_DAYS = 28
HISTORY_DAYS = 365
TRAIN_OFFSETS_DAYS = (56, 84, 112)
HISTORY_CANDIDATES = 60
POPULAR_CANDIDATES = 20


@dataclass(frozen=True)
class Boundary:
    role: str  # train, evaluate or score
    at: datetime


def end_of_history(cutoff: date) -> datetime:
    """The moment after the cutoff's last day: history is everything before it."""
    return datetime.combine(cutoff + timedelta(days=1), time(), tzinfo=UTC)


def boundaries(cutoff: date) -> tuple[Boundary, ...]:
    end = end_of_history(cutoff)
    return (
        *(Boundary("train", end - timedelta(days=d)) for d in TRAIN_OFFSETS_DAYS),
        Boundary("evaluate", end - timedelta(days=HORIZON_DAYS)),
        Boundary("score", end),
    )


def table_ref(ctx: StepContext, name: str) -> str:
    return f"`{ctx.project}.{ctx.dataset}.{name}`"


def shard_shoppers_sql(ctx: StepContext, where: str) -> str:
    """The run's scored shoppers ``where`` says (a shard's bucket range) with their
    bucket (parameter ``run_id``): a range of the clustered ``nightly_shoppers``, one row
    a shopper, so no task hashes ids row by row in ``sold_products``."""
    return (
        f"SELECT DISTINCT retailer_id, shopper_id, {BUCKET} "
        f"FROM {table_ref(ctx, NIGHTLY_SHOPPERS.name)} "
        f"WHERE run_id = @run_id AND role = 'score' AND {where}"
    )


def timestamp_literal(at: datetime) -> str:
    """A SQL timestamp literal of a moment (built from a datetime, never from input text)."""
    return f"TIMESTAMP '{at.strftime('%Y-%m-%d %H:%M:%S')}+00'"


def _window(column: str, start: datetime, stop: datetime) -> str:
    """``column`` in ``[start, stop)``, as literals: BigQuery prunes the partitions of a
    table partitioned on ``column`` only on constant expressions, never through a join."""
    return f"{column} >= {timestamp_literal(start)} AND {column} < {timestamp_literal(stop)}"


def _history_window(column: str, items: tuple[Boundary, ...]) -> str:
    return _window(
        column,
        min(b.at for b in items) - timedelta(days=HISTORY_DAYS),
        max(b.at for b in items),
    )


def _label_window(column: str, items: tuple[Boundary, ...]) -> str:
    return _window(
        column, min(b.at for b in items), max(b.at for b in items) + timedelta(days=HORIZON_DAYS)
    )


def _boundaries_sql(items: tuple[Boundary, ...]) -> str:
    # Literals built here from dates, never from input text.
    return "\n    UNION ALL ".join(
        f"SELECT {timestamp_literal(b.at)} AS boundary, '{b.role}' AS role" for b in items
    )


def candidates_sql(ctx: StepContext, items: tuple[Boundary, ...]) -> str:
    """INSERT of the candidates of every boundary, with features and labels."""
    sold = table_ref(ctx, "sold_products")
    orders = table_ref(ctx, "orders")
    features = ", ".join(c.name for c in CANDIDATE_FEATURES)
    return f"""
INSERT INTO {table_ref(ctx, NIGHTLY_CANDIDATES.name)}
  (run_id, boundary, role, retailer_id, shopper_id, {BUCKET}, product_id, brand, category,
   {features}, label_next, label_28d)
WITH bounds AS (
    {_boundaries_sql(items)}
),
lines AS (
  SELECT b.boundary, b.role, s.retailer_id, s.shopper_id, s.order_id, s.product_id,
         s.brand, s.category, s.quantity, CAST(s.amount AS FLOAT64) AS amount,
         TIMESTAMP_DIFF(b.boundary, s.occurred_at, SECOND) / 86400.0 AS age
  FROM {sold} s JOIN bounds b
    ON s.occurred_at < b.boundary
   AND s.occurred_at >= TIMESTAMP_SUB(b.boundary, INTERVAL {HISTORY_DAYS} DAY)
  WHERE {_history_window("s.occurred_at", items)}
),
baskets AS (
  SELECT boundary, retailer_id, shopper_id, order_id, age,
         ROW_NUMBER() OVER (PARTITION BY boundary, retailer_id, shopper_id
                            ORDER BY age, order_id) AS basket_rank
  FROM (SELECT boundary, retailer_id, shopper_id, order_id, MIN(age) AS age
        FROM lines GROUP BY boundary, retailer_id, shopper_id, order_id)
),
shopper AS (
  SELECT boundary, retailer_id, shopper_id, COUNT(*) AS s_baskets,
         MIN(age) AS s_days_since_last,
         (MAX(age) - MIN(age)) / GREATEST(COUNT(*) - 1, 1) AS s_interval,
         {bucket_sql()} AS {BUCKET}
  FROM baskets GROUP BY boundary, retailer_id, shopper_id
),
shopper_products AS (
  SELECT boundary, retailer_id, shopper_id, COUNT(DISTINCT product_id) AS s_products
  FROM lines GROUP BY boundary, retailer_id, shopper_id
),
product_lines AS (
  SELECT l.boundary, l.retailer_id, l.shopper_id, l.product_id, l.order_id,
         MIN(l.age) AS age, MIN(k.basket_rank) AS basket_rank,
         SUM(l.quantity) AS quantity, SUM(l.amount) AS amount
  FROM lines l JOIN baskets k USING (boundary, retailer_id, shopper_id, order_id)
  GROUP BY l.boundary, l.retailer_id, l.shopper_id, l.product_id, l.order_id
),
personal AS (
  SELECT boundary, retailer_id, shopper_id, product_id,
         COUNT(*) AS p_baskets,
         COUNTIF(age < 28) AS p_baskets_28d,
         COUNTIF(basket_rank <= 5) AS p_last5,
         MIN(basket_rank) - 1 AS p_baskets_since_last,
         SUM(EXP(-age / 14.0)) AS p_decay_14,
         SUM(EXP(-age / 56.0)) AS p_decay_56,
         MIN(age) AS p_days_since_last,
         IF(COUNT(*) > 1, (MAX(age) - MIN(age)) / (COUNT(*) - 1), NULL) AS p_interval,
         SUM(quantity) AS p_quantity, SUM(amount) AS p_spend
  FROM product_lines GROUP BY boundary, retailer_id, shopper_id, product_id
),
catalogue AS (
  SELECT product_id, ANY_VALUE(brand) AS brand, ANY_VALUE(category) AS category
  FROM lines GROUP BY product_id
),
category_personal AS (
  SELECT boundary, retailer_id, shopper_id, category,
         COUNT(DISTINCT order_id) AS c_baskets, MIN(age) AS c_days_since_last
  FROM lines GROUP BY boundary, retailer_id, shopper_id, category
),
brand_personal AS (
  SELECT boundary, retailer_id, shopper_id, brand, COUNT(DISTINCT order_id) AS b_baskets
  FROM lines GROUP BY boundary, retailer_id, shopper_id, brand
),
retailer_baskets AS (
  SELECT boundary, retailer_id, COUNT(*) AS baskets, COUNTIF(age < 28) AS baskets_28d
  FROM baskets GROUP BY boundary, retailer_id
),
product_buyers AS (
  SELECT boundary, retailer_id, product_id, SUM(p_baskets) AS baskets,
         SUM(p_baskets_28d) AS baskets_28d,
         COUNT(*) AS buyers, COUNTIF(p_baskets > 1) AS repeat_buyers
  FROM personal GROUP BY boundary, retailer_id, product_id
),
popularity AS (
  SELECT p.boundary, p.retailer_id, p.product_id,
         p.baskets / r.baskets AS g_pop,
         p.baskets_28d / GREATEST(r.baskets_28d, 1) AS g_pop_28d,
         p.repeat_buyers / p.buyers AS g_repeat,
         ROW_NUMBER() OVER (PARTITION BY p.boundary, p.retailer_id
                            ORDER BY p.baskets_28d DESC, p.baskets DESC, p.product_id)
           AS popular_rank
  FROM product_buyers p JOIN retailer_baskets r USING (boundary, retailer_id)
),
from_history AS (
  SELECT boundary, retailer_id, shopper_id, product_id FROM (
    SELECT boundary, retailer_id, shopper_id, product_id,
           ROW_NUMBER() OVER (PARTITION BY boundary, retailer_id, shopper_id
                              ORDER BY p_decay_56 DESC, p_baskets DESC, product_id) AS k
    FROM personal)
  WHERE k <= {HISTORY_CANDIDATES}
),
from_popular AS (
  SELECT s.boundary, s.retailer_id, s.shopper_id, p.product_id
  FROM shopper s JOIN popularity p USING (boundary, retailer_id)
  WHERE p.popular_rank <= {POPULAR_CANDIDATES}
),
candidates AS (
  SELECT * FROM from_history UNION DISTINCT SELECT * FROM from_popular
),
future AS (
  SELECT b.boundary, o.retailer_id, o.shopper_id, o.order_id,
         ROW_NUMBER() OVER (PARTITION BY b.boundary, o.retailer_id, o.shopper_id
                            ORDER BY o.occurred_at, o.order_id) AS k
  FROM {orders} o JOIN bounds b
    ON o.occurred_at >= b.boundary
   AND o.occurred_at < TIMESTAMP_ADD(b.boundary, INTERVAL {HORIZON_DAYS} DAY)
  WHERE {_label_window("o.occurred_at", items)}
),
future_products AS (
  SELECT f.boundary, f.retailer_id, f.shopper_id, s.product_id, MIN(f.k) AS first_k
  FROM future f JOIN {sold} s
    ON s.order_id = f.order_id AND s.retailer_id = f.retailer_id
   AND s.shopper_id = f.shopper_id
  WHERE {_label_window("s.occurred_at", items)}
  GROUP BY f.boundary, f.retailer_id, f.shopper_id, s.product_id
),
has_future AS (
  SELECT DISTINCT boundary, retailer_id, shopper_id FROM future
)
SELECT @run_id, c.boundary, b.role, c.retailer_id, c.shopper_id, s.{BUCKET}, c.product_id,
       cat.brand, cat.category,
       IF(p.product_id IS NULL, 0.0, 1.0) AS in_history,
       COALESCE(p.p_baskets, 0), COALESCE(p.p_baskets, 0) / s.s_baskets,
       COALESCE(p.p_baskets_28d, 0),
       COALESCE(p.p_last5, 0) / LEAST(5, s.s_baskets),
       COALESCE(p.p_baskets_since_last, s.s_baskets),
       COALESCE(p.p_decay_14, 0.0),
       COALESCE(p.p_decay_56, 0.0),
       COALESCE(p.p_days_since_last, {HISTORY_DAYS}.0), p.p_interval,
       IF(p.p_interval > 0, p.p_days_since_last / p.p_interval, NULL),
       COALESCE(p.p_quantity, 0), COALESCE(p.p_spend, 0.0),
       COALESCE(cp.c_baskets, 0) / s.s_baskets,
       COALESCE(cp.c_days_since_last, {HISTORY_DAYS}.0),
       COALESCE(bp.b_baskets, 0) / s.s_baskets,
       COALESCE(g.g_pop, 0.0), COALESCE(g.g_pop_28d, 0.0), g.g_repeat,
       s.s_baskets, s.s_days_since_last, s.s_interval, sp.s_products,
       IF(h.shopper_id IS NULL, NULL, IF(fp.first_k = 1, 1, 0)) AS label_next,
       IF(h.shopper_id IS NULL, NULL, IF(fp.first_k IS NULL, 0, 1)) AS label_28d
FROM candidates c
JOIN bounds b ON b.boundary = c.boundary
JOIN shopper s USING (boundary, retailer_id, shopper_id)
JOIN shopper_products sp USING (boundary, retailer_id, shopper_id)
LEFT JOIN catalogue cat ON cat.product_id = c.product_id
LEFT JOIN personal p
  ON p.boundary = c.boundary AND p.retailer_id = c.retailer_id
 AND p.shopper_id = c.shopper_id AND p.product_id = c.product_id
LEFT JOIN category_personal cp
  ON cp.boundary = c.boundary AND cp.retailer_id = c.retailer_id
 AND cp.shopper_id = c.shopper_id AND cp.category IS NOT DISTINCT FROM cat.category
LEFT JOIN brand_personal bp
  ON bp.boundary = c.boundary AND bp.retailer_id = c.retailer_id
 AND bp.shopper_id = c.shopper_id AND bp.brand IS NOT DISTINCT FROM cat.brand
LEFT JOIN popularity g
  ON g.boundary = c.boundary AND g.retailer_id = c.retailer_id
 AND g.product_id = c.product_id
LEFT JOIN has_future h
  ON h.boundary = c.boundary AND h.retailer_id = c.retailer_id
 AND h.shopper_id = c.shopper_id
LEFT JOIN future_products fp
  ON fp.boundary = c.boundary AND fp.retailer_id = c.retailer_id
 AND fp.shopper_id = c.shopper_id AND fp.product_id = c.product_id
WHERE b.role = 'score' OR h.shopper_id IS NOT NULL
"""


def shoppers_sql(ctx: StepContext, items: tuple[Boundary, ...]) -> str:
    """INSERT of each shopper's spend distribution, cadence and next basket's value."""
    orders = table_ref(ctx, "orders")
    columns = ", ".join(c.name for c in SHOPPER_FEATURES)
    return f"""
INSERT INTO {table_ref(ctx, NIGHTLY_SHOPPERS.name)}
  (run_id, boundary, role, retailer_id, shopper_id, {BUCKET}, {columns}, next_value)
WITH bounds AS (
    {_boundaries_sql(items)}
),
past AS (
  SELECT b.boundary, b.role, o.retailer_id, o.shopper_id, CAST(o.total AS FLOAT64) AS value,
         TIMESTAMP_DIFF(b.boundary, o.occurred_at, SECOND) / 86400.0 AS age,
         ROW_NUMBER() OVER (PARTITION BY b.boundary, o.retailer_id, o.shopper_id
                            ORDER BY o.occurred_at DESC, o.order_id DESC) AS recent
  FROM {orders} o JOIN bounds b
    ON o.occurred_at < b.boundary
   AND o.occurred_at >= TIMESTAMP_SUB(b.boundary, INTERVAL {HISTORY_DAYS} DAY)
  WHERE {_history_window("o.occurred_at", items)}
),
profile AS (
  SELECT boundary, ANY_VALUE(role) AS role, retailer_id, shopper_id,
         COUNT(*) AS baskets, AVG(value) AS value_mean, STDDEV_SAMP(value) AS value_std,
         APPROX_QUANTILES(value, 100)[OFFSET(25)] AS value_p25,
         APPROX_QUANTILES(value, 100)[OFFSET(50)] AS value_p50,
         APPROX_QUANTILES(value, 100)[OFFSET(75)] AS value_p75,
         APPROX_QUANTILES(value, 100)[OFFSET(90)] AS value_p90,
         MAX(IF(recent = 1, value, NULL)) AS value_last,
         AVG(IF(recent <= 5, value, NULL)) AS value_mean_last5,
         MIN(age) AS days_since_last,
         COUNT(*) / GREATEST(MAX(age) / 7.0, 1.0) AS visits_per_week,
         {bucket_sql()} AS {BUCKET}
  FROM past GROUP BY boundary, retailer_id, shopper_id
),
next_basket AS (
  SELECT boundary, retailer_id, shopper_id, value FROM (
    SELECT b.boundary, o.retailer_id, o.shopper_id, CAST(o.total AS FLOAT64) AS value,
           ROW_NUMBER() OVER (PARTITION BY b.boundary, o.retailer_id, o.shopper_id
                              ORDER BY o.occurred_at, o.order_id) AS k
    FROM {orders} o JOIN bounds b
      ON o.occurred_at >= b.boundary
     AND o.occurred_at < TIMESTAMP_ADD(b.boundary, INTERVAL {HORIZON_DAYS} DAY)
    WHERE {_label_window("o.occurred_at", items)})
  WHERE k = 1
)
SELECT @run_id, p.boundary, p.role, p.retailer_id, p.shopper_id, p.{BUCKET},
       p.baskets, p.value_mean, p.value_std, p.value_p25, p.value_p50, p.value_p75,
       p.value_p90, p.value_last, p.value_mean_last5, p.days_since_last, p.visits_per_week,
       n.value
FROM profile p LEFT JOIN next_basket n USING (boundary, retailer_id, shopper_id)
"""


def build(ctx: StepContext) -> dict[str, object]:
    """The features step: (re)computes this run's candidates and shopper features, one
    statement per boundary and table. Each reads only its boundary's year (and 28 days of
    labels) by literal time bounds, so each statement's work is one year of lines whatever
    the history kept, and no statement holds the five boundaries' windows at once."""
    items = boundaries(ctx.cutoff)
    summary: dict[str, object] = {
        "boundaries": [{"role": b.role, "at": b.at.isoformat()} for b in items]
    }
    for table, sql_of in (
        (NIGHTLY_CANDIDATES, candidates_sql),
        (NIGHTLY_SHOPPERS, shoppers_sql),
    ):
        ctx.warehouse.execute(
            f"DELETE FROM {table_ref(ctx, table.name)} WHERE run_id = @run_id",
            {"run_id": ctx.run_id},
        )
        for boundary in items:
            started = monotonic()
            ctx.warehouse.execute(sql_of(ctx, (boundary,)), {"run_id": ctx.run_id})
            log.info(
                "features of a boundary",
                extra={
                    "table": table.name,
                    "role": boundary.role,
                    "at": boundary.at.isoformat(),
                    "seconds": round(monotonic() - started, 1),
                },
            )
        counts = ctx.warehouse.query(
            f"SELECT role, COUNT(*) AS n FROM {table_ref(ctx, table.name)} "
            "WHERE run_id = @run_id GROUP BY role ORDER BY role",
            {"run_id": ctx.run_id},
        )
        summary[table.name] = {r["role"]: int(r["n"]) for r in counts}
        log.info("features built", extra={"table": table.name, "rows": summary[table.name]})
    return summary
