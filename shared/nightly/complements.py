"""Complementarity between products: co-purchase lift within a retailer's baskets.

``lift(a -> b) = P(a and b in a basket) / (P(a) P(b))``; ``support`` is the number of
baskets holding both. Only products in at least ``MIN_PRODUCT_BASKETS`` baskets and pairs
in at least ``MIN_PAIR_SUPPORT`` are kept, and each product's ``TOP_COMPLEMENTS`` best by
lift (ties by support): enough for recommendations, bounded in size.
"""

from __future__ import annotations

from datetime import datetime

from shared.nightly.context import StepContext
from shared.nightly.features import HISTORY_DAYS, table_ref, timestamp_literal

MIN_PRODUCT_BASKETS = 20
MIN_PAIR_SUPPORT = 8
TOP_COMPLEMENTS = 20


def complements_select(ctx: StepContext, boundary: datetime) -> str:
    """SELECT retailer_id, product_id, complement_id, lift, support, confidence (P(b | a))."""
    sold = table_ref(ctx, "sold_products")
    at = timestamp_literal(boundary)
    return f"""
WITH lines AS (
  SELECT DISTINCT retailer_id, order_id, product_id FROM {sold}
  WHERE occurred_at < {at}
    AND occurred_at >= TIMESTAMP_SUB({at}, INTERVAL {HISTORY_DAYS} DAY)
),
basket_count AS (
  SELECT retailer_id, COUNT(DISTINCT order_id) AS baskets FROM lines GROUP BY retailer_id
),
product_count AS (
  SELECT retailer_id, product_id, COUNT(*) AS baskets FROM lines
  GROUP BY retailer_id, product_id HAVING COUNT(*) >= {MIN_PRODUCT_BASKETS}
),
frequent AS (
  SELECT l.retailer_id, l.order_id, l.product_id FROM lines l
  JOIN product_count p USING (retailer_id, product_id)
),
pairs AS (
  SELECT a.retailer_id, a.product_id AS a_id, b.product_id AS b_id, COUNT(*) AS support
  FROM frequent a JOIN frequent b
    ON a.retailer_id = b.retailer_id AND a.order_id = b.order_id
   AND a.product_id < b.product_id
  GROUP BY a.retailer_id, a.product_id, b.product_id
  HAVING COUNT(*) >= {MIN_PAIR_SUPPORT}
),
both_ways AS (
  SELECT retailer_id, a_id AS product_id, b_id AS complement_id, support FROM pairs
  UNION ALL
  SELECT retailer_id, b_id AS product_id, a_id AS complement_id, support FROM pairs
),
scored AS (
  SELECT w.retailer_id, w.product_id, w.complement_id, w.support,
         w.support * n.baskets / (pa.baskets * pb.baskets) AS lift,
         w.support / pa.baskets AS confidence
  FROM both_ways w
  JOIN basket_count n ON n.retailer_id = w.retailer_id
  JOIN product_count pa ON pa.retailer_id = w.retailer_id AND pa.product_id = w.product_id
  JOIN product_count pb ON pb.retailer_id = w.retailer_id AND pb.product_id = w.complement_id
)
SELECT retailer_id, product_id, complement_id, lift, support, confidence FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY retailer_id, product_id
                               ORDER BY lift DESC, support DESC, complement_id) AS k
  FROM scored)
WHERE k <= {TOP_COMPLEMENTS}
"""
