"""Held-out evaluation of the ranker against the baselines, and the publishing gate.

Protocol (docs/MODEL.md): the ``evaluate`` boundary is 28 days before the end of
history; the models learnt only from labels before it. For every shopper with a basket in
the 28 held-out days, each method ranks products from history before the boundary:

- ``ranker``: the LightGBM ranker over the shopper's candidates;
- ``g_topfreq``: the retailer's most bought products (365 days);
- ``p_topfreq``: the shopper's most bought products (ties: most recent first);
- ``p_topfreq_decay14`` / ``p_topfreq_decay56``: the same, each basket weighted by
  ``exp(-age / 14 or 56 days)``.

Targets: the products of the shopper's first basket after the boundary (``next_basket``)
and of every basket in the 28 days (``next_28_days``). Levels: ``product`` and
``manufacturer_category`` (rankings mapped to manufacturer x category, each pair once).
Recall@10 and NDCG@10 per shopper, averaged; ``ranker - X`` rows carry a paired bootstrap
95% interval of the mean difference. The next basket's recall is also split into items
the shopper bought before (``repeat``) and new to them (``new``). Recommendations of new
products are judged on new items only, against the retailer's most popular products the
shopper never bought (``g_topfreq_new``): the challenger is ``neighbours`` (what the
shoppers of the same retailer who shop like them buy, blended with 56-day popularity:
``neighbours.py``), with its parts alone (``neighbours_only``, ``g_topfreq_new_56d``) and
``complements`` (popularity boosted by pairwise co-purchase lift:
``baskets(b) * (1 + sum_h w_h max(lift(h, b) - 1, 0) / sum_h w_h)``, ``h`` the shopper's
products weighted by their 56-day decayed count) as ablations.

The gate passes when the ranker's product recall@10 on the next basket beats P-TopFreq
with the bootstrap interval of the difference above zero.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from shared.nightly.complements import complements_select
from shared.nightly.context import StepContext
from shared.nightly.features import (
    HISTORY_DAYS,
    HORIZON_DAYS,
    boundaries,
    table_ref,
    timestamp_literal,
)
from shared.nightly.metrics import distinct, ndcg_at_k, paired_bootstrap, recall_at_k
from shared.nightly.neighbours import RECENT_DAYS, RetailerHistory, parse_packed, recommend
from shared.nightly.samples import hash_sample, pool_where
from shared.nightly.shards import BUCKET
from shared.nightly.tables import MODEL_EVALUATIONS, NIGHTLY_CANDIDATES, NIGHTLY_SHOPPERS
from shared.nightly.training import (
    Candidates,
    load_candidates,
    load_model,
    load_shoppers,
    value_matrix,
)
from shared.platform.warehouse import Row

log = logging.getLogger(__name__)

K = 10
BASELINE_DEPTH = 30  # products per ranking, so that 10 distinct coarser pairs exist
GATE_METHOD = "p_topfreq"
ShopperKey = tuple[str, str]  # retailer_id, shopper_id


@dataclass
class Targets:
    """Per shopper: next basket's products, next 28 days' products, and which are repeats."""

    next_basket: dict[ShopperKey, set[str]]
    next_28_days: dict[ShopperKey, set[str]]
    repeat: dict[ShopperKey, set[str]]
    pair_of: dict[str, str]  # product -> manufacturer x category


def _pair(brand: str | None, category: str | None) -> str:
    return f"{brand or '?'} | {category or '?'}"


def _evaluate_at(ctx: StepContext) -> datetime:
    return next(b.at for b in boundaries(ctx.cutoff) if b.role == "evaluate")


def _evaluate_boundary(ctx: StepContext) -> str:
    return timestamp_literal(_evaluate_at(ctx))


def load_targets(ctx: StepContext, sample: str = "TRUE") -> Targets:
    """The held-out weeks' products of the shoppers ``sample`` says (a SQL predicate on
    ``retailer_id``, ``shopper_id``; parameter ``run_id``)."""
    sold, orders = table_ref(ctx, "sold_products"), table_ref(ctx, "orders")
    at = _evaluate_boundary(ctx)
    rows = ctx.warehouse.query(
        f"""
WITH future AS (
  SELECT retailer_id, shopper_id, order_id,
         ROW_NUMBER() OVER (PARTITION BY retailer_id, shopper_id
                            ORDER BY occurred_at, order_id) AS k
  FROM {orders}
  WHERE occurred_at >= {at} AND occurred_at < TIMESTAMP_ADD({at}, INTERVAL {HORIZON_DAYS} DAY)
    AND ({sample})
),
bought AS (
  SELECT f.retailer_id, f.shopper_id, s.product_id, ANY_VALUE(s.brand) AS brand,
         ANY_VALUE(s.category) AS category, MIN(f.k) = 1 AS in_next
  FROM future f JOIN {sold} s
    ON s.order_id = f.order_id AND s.retailer_id = f.retailer_id
   AND s.shopper_id = f.shopper_id
  WHERE s.occurred_at >= {at}
  GROUP BY f.retailer_id, f.shopper_id, s.product_id
),
history AS (
  SELECT DISTINCT retailer_id, shopper_id, product_id FROM {sold}
  WHERE occurred_at < {at}
    AND occurred_at >= TIMESTAMP_SUB({at}, INTERVAL {HISTORY_DAYS} DAY)
    AND ({sample})
)
SELECT b.retailer_id, b.shopper_id, b.product_id, b.brand, b.category, b.in_next,
       h.product_id IS NOT NULL AS is_repeat
FROM bought b LEFT JOIN history h
  ON h.retailer_id = b.retailer_id AND h.shopper_id = b.shopper_id
 AND h.product_id = b.product_id
""",
        {"run_id": ctx.run_id},
    )
    targets = Targets(defaultdict(set), defaultdict(set), defaultdict(set), {})
    for r in rows:
        key = (r["retailer_id"], r["shopper_id"])
        targets.next_28_days[key].add(r["product_id"])
        if r["in_next"]:
            targets.next_basket[key].add(r["product_id"])
        if r["is_repeat"]:
            targets.repeat[key].add(r["product_id"])
        targets.pair_of[r["product_id"]] = _pair(r["brand"], r["category"])
    return targets


def _ranked_rows(rows: Sequence[Row], key_fields: Sequence[str]) -> dict[Any, list[str]]:
    out: dict[Any, list[str]] = defaultdict(list)
    for r in rows:  # already ordered by key, rank
        out[tuple(r[f] for f in key_fields)].append(r["product_id"])
    return out


def load_baselines(
    ctx: StepContext, pair_of: dict[str, str], sample: str = "TRUE"
) -> dict[str, Any]:
    """P-TopFreq per shopper (of ``sample``) and G-TopFreq per retailer (of everyone)."""
    sold = table_ref(ctx, "sold_products")
    at = _evaluate_boundary(ctx)
    window = (
        f"occurred_at < {at} AND occurred_at >= TIMESTAMP_SUB({at}, INTERVAL {HISTORY_DAYS} DAY)"
    )
    personal = ctx.warehouse.query(
        f"""
SELECT retailer_id, shopper_id, product_id, brand, category, k FROM (
  SELECT retailer_id, shopper_id, product_id, ANY_VALUE(brand) AS brand,
         ANY_VALUE(category) AS category,
         ROW_NUMBER() OVER (PARTITION BY retailer_id, shopper_id
                            ORDER BY COUNT(DISTINCT order_id) DESC, MAX(occurred_at) DESC,
                                     product_id) AS k
  FROM {sold} WHERE {window} AND ({sample})
  GROUP BY retailer_id, shopper_id, product_id)
WHERE k <= {BASELINE_DEPTH}
ORDER BY retailer_id, shopper_id, k
""",
        {"run_id": ctx.run_id},
    )
    popular = ctx.warehouse.query(
        f"""
SELECT retailer_id, product_id, brand, category, k FROM (
  SELECT retailer_id, product_id, ANY_VALUE(brand) AS brand, ANY_VALUE(category) AS category,
         ROW_NUMBER() OVER (PARTITION BY retailer_id
                            ORDER BY COUNT(DISTINCT order_id) DESC, product_id) AS k
  FROM {sold} WHERE {window}
  GROUP BY retailer_id, product_id)
WHERE k <= {BASELINE_DEPTH}
ORDER BY retailer_id, k
"""
    )
    for r in (*personal, *popular):
        pair_of.setdefault(r["product_id"], _pair(r["brand"], r["category"]))
    return {
        "p_topfreq": _ranked_rows(personal, ("retailer_id", "shopper_id")),
        "g_topfreq": {k[0]: v for k, v in _ranked_rows(popular, ("retailer_id",)).items()},
    }


def load_new_item_recommendations(
    ctx: StepContext, sample: str = "TRUE"
) -> dict[str, dict[ShopperKey, list[str]]]:
    """Per shopper (of ``sample``), 10 products never bought: by complementarity, and by
    popularity."""
    sold = table_ref(ctx, "sold_products")
    candidates = table_ref(ctx, NIGHTLY_CANDIDATES.name)
    evaluate_at = _evaluate_at(ctx)
    at = timestamp_literal(evaluate_at)
    rows = ctx.warehouse.query(
        f"""
WITH complements AS ({complements_select(ctx, evaluate_at)}),
history AS (
  SELECT DISTINCT retailer_id, shopper_id, product_id FROM {sold}
  WHERE occurred_at < {at}
    AND occurred_at >= TIMESTAMP_SUB({at}, INTERVAL {HISTORY_DAYS} DAY)
    AND ({sample})
),
shoppers AS (
  SELECT DISTINCT retailer_id, shopper_id FROM {candidates}
  WHERE run_id = @run_id AND role = 'evaluate' AND ({sample})
),
weights AS (
  SELECT retailer_id, shopper_id, product_id, p_decay_56 AS weight FROM {candidates}
  WHERE run_id = @run_id AND role = 'evaluate' AND in_history = 1 AND ({sample})
),
total_weight AS (
  SELECT retailer_id, shopper_id, SUM(weight) AS total FROM weights
  GROUP BY retailer_id, shopper_id
),
boost AS (
  SELECT w.retailer_id, w.shopper_id, c.complement_id AS product_id,
         SUM(w.weight * GREATEST(c.lift - 1.0, 0.0)) AS boost
  FROM weights w JOIN complements c
    ON c.retailer_id = w.retailer_id AND c.product_id = w.product_id
  GROUP BY w.retailer_id, w.shopper_id, c.complement_id
),
popular AS (
  SELECT retailer_id, product_id, COUNT(DISTINCT order_id) AS score FROM {sold}
  WHERE occurred_at < {at}
    AND occurred_at >= TIMESTAMP_SUB({at}, INTERVAL {HISTORY_DAYS} DAY)
  GROUP BY retailer_id, product_id
),
top_popular AS (
  SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY retailer_id ORDER BY score DESC, product_id)
      AS k FROM popular)
  WHERE k <= 500
),
by_popularity AS (
  SELECT s.retailer_id, s.shopper_id, p.product_id, CAST(p.score AS FLOAT64) AS score
  FROM shoppers s JOIN top_popular p ON p.retailer_id = s.retailer_id
),
by_complement AS (
  SELECT b.retailer_id, b.shopper_id, b.product_id,
         p.score * (1.0 + b.boost / t.total) AS score
  FROM boost b
  JOIN total_weight t ON t.retailer_id = b.retailer_id AND t.shopper_id = b.shopper_id
  JOIN popular p ON p.retailer_id = b.retailer_id AND p.product_id = b.product_id
  UNION ALL
  SELECT y.* FROM by_popularity y
  WHERE NOT EXISTS (
    SELECT 1 FROM boost b WHERE b.retailer_id = y.retailer_id
      AND b.shopper_id = y.shopper_id AND b.product_id = y.product_id)
),
ranked AS (
  SELECT method, retailer_id, shopper_id, product_id,
         ROW_NUMBER() OVER (PARTITION BY method, retailer_id, shopper_id
                            ORDER BY score DESC, product_id) AS k
  FROM (
    SELECT 'complements' AS method, x.* FROM by_complement x
    UNION ALL SELECT 'g_topfreq_new' AS method, y.* FROM by_popularity y) r
  WHERE NOT EXISTS (
    SELECT 1 FROM history h
    WHERE h.retailer_id = r.retailer_id AND h.shopper_id = r.shopper_id
      AND h.product_id = r.product_id)
)
SELECT method, retailer_id, shopper_id, product_id, k FROM ranked WHERE k <= {K}
ORDER BY method, retailer_id, shopper_id, k
""",
        {"run_id": ctx.run_id},
    )
    out: dict[str, dict[ShopperKey, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        out[r["method"]][(r["retailer_id"], r["shopper_id"])].append(r["product_id"])
    return out


def load_histories(
    ctx: StepContext, boundary: datetime, where: str = "TRUE"
) -> dict[str, RetailerHistory]:
    """The products of the 365 days before the boundary of the shoppers ``where`` says
    (parameter ``run_id``), with the baskets holding each over the year and over the last
    ``RECENT_DAYS``: one packed row per shopper (a row per pair would cost a JSON cell per
    value on the way out)."""
    return parse_packed(
        ctx.warehouse.query(histories_sql(ctx, boundary, where), {"run_id": ctx.run_id})
    )


def histories_sql(
    ctx: StepContext, boundary: datetime, where: str = "TRUE", shoppers: str | None = None
) -> str:
    """The packed histories of ``load_histories``, of the shoppers ``where`` says (a SQL
    predicate on ``retailer_id``, ``shopper_id``: a sample, a pool): one row a shopper.
    ``shoppers``: a query of ``(retailer_id, shopper_id, shard_bucket)`` (a shard's) the
    histories are joined to, each row then carrying its ``shard_bucket`` (else NULL)."""
    sold, at = table_ref(ctx, "sold_products"), timestamp_literal(boundary)
    join = f"JOIN ({shoppers}) k USING (retailer_id, shopper_id)" if shoppers else ""
    bucket = f"k.{BUCKET}" if shoppers else "CAST(NULL AS INT64)"
    return f"""
WITH pairs AS (
  SELECT retailer_id, shopper_id, product_id, MAX({bucket}) AS {BUCKET},
         COUNT(DISTINCT order_id) AS baskets,
         COUNT(DISTINCT IF(occurred_at >= TIMESTAMP_SUB({at}, INTERVAL {RECENT_DAYS} DAY),
                           order_id, NULL)) AS recent_baskets
  FROM {sold} {join}
  WHERE occurred_at < {at}
    AND occurred_at >= TIMESTAMP_SUB({at}, INTERVAL {HISTORY_DAYS} DAY)
    AND ({where})
  GROUP BY retailer_id, shopper_id, product_id
)
SELECT retailer_id, shopper_id, MAX({BUCKET}) AS {BUCKET},
       STRING_AGG(product_id || ':' || CAST(baskets AS STRING) || ':'
                  || CAST(recent_baskets AS STRING), ';') AS items
FROM pairs GROUP BY retailer_id, shopper_id
ORDER BY retailer_id, shopper_id
"""


def ranker_rankings(
    candidates: Candidates, predict: Callable[[Any], Any]
) -> dict[str, dict[ShopperKey, list[str]]]:
    """Candidate rankings per shopper: by the model, and by each decayed count."""
    scores = predict(candidates.x) if len(candidates.keys) else np.empty(0)
    columns = {
        "p_topfreq_decay14": candidates.x[:, _feature("p_decay_14")],
        "p_topfreq_decay56": candidates.x[:, _feature("p_decay_56")],
    }
    recency = candidates.x[:, _feature("p_days_since_last")]
    out: dict[str, dict[ShopperKey, list[str]]] = {m: {} for m in ("ranker", *columns)}
    for start, stop in candidates.groups():
        _, retailer, shopper = candidates.keys[start]
        idx = np.arange(start, stop)
        products = [candidates.products[i] for i in idx]
        out["ranker"][(retailer, shopper)] = rank_by(products, scores[idx])
        for method, values in columns.items():
            # Decayed counts rank only products the shopper bought (personal baselines).
            bought = [i for i in idx if values[i] > 0]
            out[method][(retailer, shopper)] = rank_by(
                [candidates.products[i] for i in bought],
                values[bought] - 1e-9 * recency[bought],
            )
    return out


def _feature(name: str) -> int:
    from shared.nightly.training import FEATURES

    return FEATURES.index(name)


def rank_by(products: Sequence[str], scores: Any) -> list[str]:
    """Products by decreasing score; ties broken by product id (deterministic)."""
    order = sorted(range(len(products)), key=lambda i: (-float(scores[i]), products[i]))
    return [products[i] for i in order]


@dataclass(frozen=True)
class Result:
    level: str
    target: str
    method: str
    metric: str
    value: float
    ci_low: float | None
    ci_high: float | None
    shoppers: int

    def row(self, run_id: str) -> Row:
        return {"run_id": run_id, **self.__dict__}


def _score(
    rankings: dict[ShopperKey, list[str]],
    shoppers: Sequence[ShopperKey],
    truth: dict[ShopperKey, set[str]],
    metric: Callable[[Sequence[Hashable], set[Hashable]], float],
    mapper: Callable[[list[str]], list[Hashable]] | None = None,
) -> Any:
    values = []
    for key in shoppers:
        ranked: list[Hashable] = list(rankings.get(key, []))
        target: set[Hashable] = set(truth[key])
        if mapper is not None:
            ranked = mapper(rankings.get(key, []))
            target = set(mapper(sorted(truth[key])))
        values.append(metric(ranked, target))
    return np.array(values, dtype=float)


def compare(
    level: str,
    target: str,
    per_method: dict[str, dict[ShopperKey, list[str]]],
    shoppers: Sequence[ShopperKey],
    truth: dict[ShopperKey, set[str]],
    mapper: Callable[[list[str]], list[Hashable]] | None = None,
    challenger: str = "ranker",
) -> list[Result]:
    """Each method's mean recall@10 and NDCG@10, and the challenger's paired differences."""
    results: list[Result] = []
    if not shoppers:
        log.warning("no shopper to evaluate", extra={"level": level, "target": target})
        return results
    metrics: dict[str, Callable[[Sequence[Hashable], set[Hashable]], float]] = {
        "recall@10": lambda r, t: recall_at_k(r, t, K),
        "ndcg@10": lambda r, t: ndcg_at_k(r, t, K),
    }
    for metric_name, metric in metrics.items():
        values = {m: _score(r, shoppers, truth, metric, mapper) for m, r in per_method.items()}
        for method, v in values.items():
            low, high = paired_bootstrap(v)
            results.append(
                Result(level, target, method, metric_name, float(v.mean()), low, high, len(v))
            )
        for method, v in values.items():
            if method == challenger:
                continue
            diff = values[challenger] - v
            low, high = paired_bootstrap(diff)
            results.append(
                Result(
                    level,
                    target,
                    f"{challenger} - {method}",
                    metric_name,
                    float(diff.mean()),
                    low,
                    high,
                    len(diff),
                )
            )
    return results


def split_recall(
    per_method: dict[str, dict[ShopperKey, list[str]]], targets: Targets
) -> list[Result]:
    """Next-basket recall@10 on repeat items and on new items, separately."""
    results: list[Result] = []
    for part in ("repeat", "new"):
        truth: dict[ShopperKey, set[str]] = {}
        for key, items in targets.next_basket.items():
            repeat = targets.repeat.get(key, set())
            chosen = items & repeat if part == "repeat" else items - repeat
            if chosen:
                truth[key] = chosen
        shoppers = sorted(truth)
        for method, rankings in per_method.items():
            hits = total = 0
            for key in shoppers:
                hits += len(set(rankings.get(key, [])[:K]) & truth[key])
                total += len(truth[key])
            v = _score(rankings, shoppers, truth, lambda r, t: recall_at_k(r, t, K))
            low: float | None = None
            high: float | None = None
            if len(v):
                low, high = paired_bootstrap(v)
            results.append(
                Result(
                    "product",
                    f"next_basket_{part}_items",
                    method,
                    "recall@10",
                    float(v.mean()) if len(v) else 0.0,
                    low,
                    high,
                    len(v),
                )
            )
            results.append(
                Result(
                    "product",
                    f"next_basket_{part}_items",
                    method,
                    "hit_share",
                    hits / total if total else 0.0,
                    None,
                    None,
                    len(v),
                )
            )
    return results


def value_results(ctx: StepContext, sample: str | None = None) -> list[Result]:
    """How well the next basket's value is predicted, and how the spend thresholds behave
    (on the shoppers of ``sample``; the global mean is the train boundaries')."""
    rows = [r for r in load_shoppers(ctx, "evaluate", sample) if r["next_value"] is not None]
    if not rows:
        return []
    actual = np.array([float(r["next_value"]) for r in rows])
    model = load_model(ctx, "basket_value.txt")
    (trained,) = ctx.warehouse.query(
        f"SELECT AVG(next_value) AS mean FROM {table_ref(ctx, NIGHTLY_SHOPPERS.name)} "
        "WHERE run_id = @run_id AND role = 'train' AND next_value IS NOT NULL",
        {"run_id": ctx.run_id},
    )
    global_mean = float(trained["mean"])
    predictions = {
        "value_model": model.predict(value_matrix(rows)),
        "shopper_mean": np.array([float(r["value_mean"]) for r in rows]),
        "shopper_median": np.array([float(r["value_p50"]) for r in rows]),
        "last_basket": np.array([float(r["value_last"]) for r in rows]),
        "global_mean": np.full(len(rows), global_mean),
    }
    variance = float(np.mean((actual - actual.mean()) ** 2))
    results: list[Result] = []
    for method, predicted in predictions.items():
        errors = actual - predicted
        results += [
            Result(
                "basket_value",
                "next_basket",
                method,
                "mae",
                float(np.abs(errors).mean()),
                None,
                None,
                len(rows),
            ),
            Result(
                "basket_value",
                "next_basket",
                method,
                "r2",
                1.0 - float(np.mean(errors**2)) / variance,
                None,
                None,
                len(rows),
            ),
        ]
    for quantile in ("value_p50", "value_p75", "value_p90"):
        above = np.array([float(r["next_value"]) > float(r[quantile]) for r in rows])
        results.append(
            Result(
                "basket_value",
                "next_basket",
                "spend_profile",
                f"share_above_{quantile[6:]}",
                float(above.mean()),
                None,
                None,
                len(rows),
            )
        )
    return results


EVALUATION_SALT = "cartwise-evaluation-sample"  # independent of the training sample's


def evaluation_sample(ctx: StepContext) -> tuple[str | None, dict[str, object]]:
    """The SQL predicate of the shoppers evaluated (None: every shopper), and what it is:
    about ``ctx.evaluate_shoppers`` of the evaluate boundary's shoppers (``samples.py``).
    Every load of the step keeps to it, so its memory grows with the sample, not with the
    population; the popularity baselines and the neighbour pool still see everyone."""
    return hash_sample(ctx, "evaluate", ctx.evaluate_shoppers, EVALUATION_SALT)


def evaluate(ctx: StepContext) -> dict[str, object]:
    """The evaluate step: writes ``model_evaluations`` and returns the gate's decision."""
    started = time.monotonic()
    sample, sampled = evaluation_sample(ctx)
    within = sample or "TRUE"
    targets = load_targets(ctx, within)
    candidates = load_candidates(ctx, "evaluate", sample)
    ranker = load_model(ctx, "ranker.txt")
    per_method = ranker_rankings(candidates, ranker.predict)
    baselines = load_baselines(ctx, targets.pair_of, within)
    shoppers = sorted(k for k in targets.next_basket if k in per_method["ranker"])
    per_method["p_topfreq"] = baselines["p_topfreq"]
    per_method["g_topfreq"] = {k: baselines["g_topfreq"].get(k[0], []) for k in shoppers}
    for i, product in enumerate(candidates.products):
        targets.pair_of.setdefault(product, _pair(candidates.brands[i], candidates.categories[i]))

    def to_pairs(products: list[str]) -> list[Hashable]:
        return distinct(targets.pair_of.get(p, p) for p in products)

    results: list[Result] = []
    for target, truth in (
        ("next_basket", targets.next_basket),
        ("next_28_days", targets.next_28_days),
    ):
        results += compare("product", target, per_method, shoppers, truth)
        results += compare("manufacturer_category", target, per_method, shoppers, truth, to_pairs)
    results += split_recall(per_method, targets)
    new_items = load_new_item_recommendations(ctx, within)
    new_truth = {
        k: v - targets.repeat.get(k, set())
        for k, v in targets.next_basket.items()
        if v - targets.repeat.get(k, set()) and k in per_method["ranker"]
    }
    neighbours_started = time.monotonic()
    # The neighbours: the retailer's pool (as the shards' are), with the sampled shoppers.
    at = _evaluate_at(ctx)
    histories = load_histories(
        ctx, at, f"({within}) OR {pool_where(ctx, at)}" if sample else "TRUE"
    )
    loaded = time.monotonic()
    new_items.update(recommend(histories, sorted(new_truth), K))
    log.info(
        "new items recommended",
        extra={
            "load_seconds": round(loaded - neighbours_started, 1),
            "recommend_seconds": round(time.monotonic() - loaded, 1),
            "shoppers": len(new_truth),
        },
    )
    results += compare(
        "product",
        "next_basket_new_items",
        {m: dict(r) for m, r in new_items.items()},
        sorted(new_truth),
        new_truth,
        challenger="neighbours",
    )
    results += value_results(ctx, sample)
    ctx.warehouse.replace_rows(
        MODEL_EVALUATIONS.name, ctx.run_id, [r.row(ctx.run_id) for r in results]
    )
    summary = gate(results, ctx.gate_min_lift)
    summary["evaluation_sample"] = sampled
    summary["table"] = [{k: v for k, v in r.__dict__.items()} for r in results]
    summary["seconds"] = round(time.monotonic() - started, 1)
    log.info("model evaluated", extra={k: v for k, v in summary.items() if k != "table"})
    return summary


def _find(results: Sequence[Result], level: str, target: str, method: str, metric: str) -> Result:
    for r in results:
        if (r.level, r.target, r.method, r.metric) == (level, target, method, metric):
            return r
    raise KeyError((level, target, method, metric))


def gate(results: Sequence[Result], min_lift: float = 0.0) -> dict[str, Any]:
    """Passes when the ranker beats P-TopFreq on next-basket product recall@10, surely,
    and by at least ``min_lift`` (relative)."""
    try:
        ranker = _find(results, "product", "next_basket", "ranker", "recall@10")
        baseline = _find(results, "product", "next_basket", GATE_METHOD, "recall@10")
        diff = _find(results, "product", "next_basket", f"ranker - {GATE_METHOD}", "recall@10")
    except KeyError:
        return {"gate_passed": False, "shoppers": 0, "reason": "no shopper to evaluate"}
    passed = (
        ranker.value > baseline.value * (1.0 + min_lift)
        and diff.ci_low is not None
        and diff.ci_low > 0
    )
    return {
        "gate_passed": bool(passed),
        "shoppers": ranker.shoppers,
        "ranker_recall@10": round(ranker.value, 4),
        "p_topfreq_recall@10": round(baseline.value, 4),
        "relative_lift": round(ranker.value / baseline.value - 1.0, 4) if baseline.value else None,
        "difference_ci95": [round(diff.ci_low or 0.0, 4), round(diff.ci_high or 0.0, 4)],
        "min_lift": min_lift,
    }
