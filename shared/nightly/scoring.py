"""Scoring: tonight's predictions, complements and spend profiles, for the tree compiler.

The ``score`` step writes what is global to a retailer (``product_complements``) and
packs, once, the scored shoppers' histories and the neighbour pools the shards read
(``nightly_histories``, ``nightly_neighbour_pools``); each shard of shoppers
(``shards.Shard``, one task of the ``nightly_shards`` Cloud Run job) writes its own
shoppers' rows of the three per-shopper tables with ``score_shard``, replacing only that
shard's rows of the run (a retried task rewrites the same rows):

- ``shopper_product_scores``: the ranker over each shopper's candidates at the end of
  history, their ``TOP_PRODUCTS`` best (rank 1 = best);
- ``shopper_new_products``: their ``NEW_PRODUCTS`` best products never bought, from the
  shoppers who shop like them (``neighbours.py``);
- ``product_complements``: co-purchase lift over the last 365 days (``complements.py``);
- ``shopper_spend_profiles``: each shopper's basket value quantiles and visits per week,
  from which the tension-cart thresholds are set (the next basket's value itself is
  close to unpredictable: docs/MODEL.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

from shared.nightly.complements import complements_select
from shared.nightly.context import StepContext
from shared.nightly.evaluation import histories_sql, rank_by
from shared.nightly.features import end_of_history, shard_shoppers_sql, table_ref
from shared.nightly.neighbours import (
    NeighbourPool,
    RetailerHistory,
    add_packed,
    parse_packed,
    prepare_pool,
    recommend_from_pool,
)
from shared.nightly.samples import pool_where
from shared.nightly.shards import BUCKET, WHOLE, Shard
from shared.nightly.tables import (
    NIGHTLY_HISTORIES,
    NIGHTLY_NEIGHBOUR_POOLS,
    NIGHTLY_SHOPPERS,
    PRODUCT_COMPLEMENTS,
    SHOPPER_NEW_PRODUCTS,
    SHOPPER_PRODUCT_SCORES,
    SHOPPER_SPEND_PROFILES,
)
from shared.nightly.training import candidates_sql, load_model, unpack_candidates
from shared.platform.warehouse import Row

log = logging.getLogger(__name__)

TOP_PRODUCTS = 20
NEW_PRODUCTS = 5  # products never bought, per shopper (the trees show the first two)


def load_pools(ctx: StepContext) -> dict[str, NeighbourPool | None]:
    """Every retailer's neighbour pool of the run, prepared: one retailer at a time
    (through the Storage Read API), so the task holds the prepared matrices of the pools
    and the packed rows of one retailer at most, never those of all."""
    pools_table = table_ref(ctx, NIGHTLY_NEIGHBOUR_POOLS.name)
    retailers = ctx.warehouse.query(
        f"SELECT DISTINCT retailer_id FROM {pools_table} WHERE run_id = @run_id "
        "ORDER BY retailer_id",
        {"run_id": ctx.run_id},
    )
    pools: dict[str, NeighbourPool | None] = {}
    for row in retailers:
        retailer = str(row["retailer_id"])
        packed = [
            shopper
            for batch in ctx.warehouse.stream(
                f"SELECT shopper_id, items FROM {pools_table} "
                "WHERE run_id = @run_id AND retailer_id = @retailer_id",
                {"run_id": ctx.run_id, "retailer_id": retailer},
                batch_rows=ctx.batch_shoppers,
            )
            for shopper in batch
        ]
        # In shopper order, as every night: the pool's rows, and so its ties, do not
        # depend on the order the stream returns them in.
        packed.sort(key=lambda r: str(r["shopper_id"]))
        history = RetailerHistory()
        for shopper in packed:
            add_packed(history, shopper)
        del packed
        pools[retailer] = prepare_pool(history)
    return pools


def new_products(ctx: StepContext, shard: Shard = WHOLE) -> Iterator[list[Row]]:
    """Each shopper's ``NEW_PRODUCTS`` best products never bought, by ``neighbours``, in
    batches of ``ctx.batch_shoppers`` shoppers of the shard (their packed histories, a
    bucket range of ``nightly_histories``); their neighbours come from the retailer's pool
    (``nightly_neighbour_pools``), read once: memory holds the pool and one batch."""
    pools = load_pools(ctx)
    for batch in ctx.warehouse.stream(
        f"SELECT retailer_id, shopper_id, {BUCKET}, items "
        f"FROM {table_ref(ctx, NIGHTLY_HISTORIES.name)} "
        f"WHERE run_id = @run_id AND {shard.predicate()} ORDER BY retailer_id, shopper_id",
        {"run_id": ctx.run_id},
        batch_rows=ctx.batch_shoppers,
        slice_by=BUCKET,
    ):
        buckets = {(r["retailer_id"], r["shopper_id"]): r[BUCKET] for r in batch}
        rows: list[Row] = []
        for retailer, history in sorted(parse_packed(batch).items()):
            pool = pools.get(retailer)
            if pool is None:
                continue
            ranked = recommend_from_pool(pool, history, NEW_PRODUCTS)
            rows.extend(
                {
                    "run_id": ctx.run_id,
                    "retailer_id": retailer,
                    "shopper_id": shopper,
                    BUCKET: buckets[(retailer, shopper)],
                    "product_id": product,
                    "rank": rank,
                }
                for shopper, products in sorted(ranked.items())
                for rank, product in enumerate(products, 1)
            )
        yield rows


def top_products(run_id: str, ctx: StepContext, shard: Shard = WHOLE) -> Iterator[list[Row]]:
    """Each shopper's ``TOP_PRODUCTS`` by the ranker, in batches of ``ctx.batch_shoppers``
    shoppers of the shard (their packed candidates streamed, the ranker read once)."""
    model = None
    for batch in ctx.warehouse.stream(
        candidates_sql(ctx, "score", shard.predicate()),
        {"run_id": ctx.run_id, "role": "score"},
        batch_rows=ctx.batch_shoppers,
        slice_by=BUCKET,
    ):
        buckets = {(r["retailer_id"], r["shopper_id"]): r[BUCKET] for r in batch}
        candidates = unpack_candidates(batch)
        if not candidates.keys:
            continue
        model = model or load_model(ctx, "ranker.txt")
        scores = model.predict(candidates.x)
        rows: list[Row] = []
        for start, stop in candidates.groups():
            _, retailer, shopper = candidates.keys[start]
            products = candidates.products[start:stop]
            by_product = dict(zip(products, scores[start:stop], strict=True))
            for rank, product in enumerate(rank_by(products, scores[start:stop])[:TOP_PRODUCTS], 1):
                rows.append(
                    {
                        "run_id": run_id,
                        "retailer_id": retailer,
                        "shopper_id": shopper,
                        BUCKET: buckets[(retailer, shopper)],
                        "product_id": product,
                        "rank": rank,
                        "score": float(by_product[product]),
                    }
                )
        yield rows


def _write_batches(ctx: StepContext, table: str, where: str, batches: Iterable[list[Row]]) -> int:
    """The shard's rows of the run deleted, then each batch appended (one load job each)."""
    ctx.warehouse.replace_rows(table, ctx.run_id, [], where)
    written = 0
    for rows in batches:
        ctx.warehouse.append_rows(table, rows)
        written += len(rows)
    return written


def _replace_with_select(
    ctx: StepContext, table: str, columns: str, select: str, where: str = "TRUE"
) -> None:
    target = table_ref(ctx, table)
    ctx.warehouse.execute(
        f"DELETE FROM {target} WHERE run_id = @run_id AND ({where})", {"run_id": ctx.run_id}
    )
    ctx.warehouse.execute(
        f"INSERT INTO {target} (run_id, {columns})\nSELECT @run_id, {columns} FROM ({select})",
        {"run_id": ctx.run_id},
    )


def _count(ctx: StepContext, table: str, where: str = "TRUE") -> int:
    rows = ctx.warehouse.query(
        f"SELECT COUNT(*) AS n FROM {table_ref(ctx, table)} WHERE run_id = @run_id AND ({where})",
        {"run_id": ctx.run_id},
    )
    return int(rows[0]["n"])


def score(ctx: StepContext) -> dict[str, object]:
    """The score step: the retailers' product complements (the shards write the rest)."""
    started = time.monotonic()
    _replace_with_select(
        ctx,
        PRODUCT_COMPLEMENTS.name,
        "retailer_id, product_id, complement_id, lift, support",
        complements_select(ctx, end_of_history(ctx.cutoff)),
    )
    # Packed once here, read by every shard (a bucket range; the pools whole).
    boundary = end_of_history(ctx.cutoff)
    _replace_with_select(
        ctx,
        NIGHTLY_HISTORIES.name,
        f"retailer_id, shopper_id, {BUCKET}, items",
        histories_sql(ctx, boundary, shoppers=shard_shoppers_sql(ctx, "TRUE")),
    )
    _replace_with_select(
        ctx,
        NIGHTLY_NEIGHBOUR_POOLS.name,
        "retailer_id, shopper_id, items",
        histories_sql(ctx, boundary, pool_where(ctx, boundary)),
    )
    summary: dict[str, object] = {
        table: _count(ctx, table)
        for table in (
            PRODUCT_COMPLEMENTS.name,
            NIGHTLY_HISTORIES.name,
            NIGHTLY_NEIGHBOUR_POOLS.name,
        )
    }
    summary["seconds"] = round(time.monotonic() - started, 1)
    log.info("complements scored", extra={"summary": summary})
    return summary


def score_shard(ctx: StepContext, shard: Shard = WHOLE) -> dict[str, object]:
    """One shard's shoppers: their top products, new products and spend profiles (the
    shard's rows of the run replaced; ``WHOLE``: every shopper)."""
    started = time.monotonic()
    where = shard.predicate()
    _write_batches(ctx, SHOPPER_PRODUCT_SCORES.name, where, top_products(ctx.run_id, ctx, shard))
    ranked = time.monotonic()
    _write_batches(ctx, SHOPPER_NEW_PRODUCTS.name, where, new_products(ctx, shard))
    recommended = time.monotonic()
    _replace_with_select(
        ctx,
        SHOPPER_SPEND_PROFILES.name,
        f"retailer_id, shopper_id, {BUCKET}, baskets, value_p25, value_p50, value_p75, "
        "value_p90, visits_per_week",
        f"SELECT retailer_id, shopper_id, {BUCKET}, CAST(baskets AS INT64) AS baskets, value_p25, "
        f"value_p50, value_p75, value_p90, visits_per_week "
        f"FROM {table_ref(ctx, NIGHTLY_SHOPPERS.name)} "
        f"WHERE run_id = @run_id AND role = 'score' AND {where}",
        where,
    )
    summary: dict[str, object] = {
        table: _count(ctx, table, where)
        for table in (
            SHOPPER_PRODUCT_SCORES.name,
            SHOPPER_NEW_PRODUCTS.name,
            SHOPPER_SPEND_PROFILES.name,
        )
    }
    summary["shard"] = shard.name
    summary["ranking_seconds"] = round(ranked - started, 1)
    summary["new_products_seconds"] = round(recommended - ranked, 1)
    summary["seconds"] = round(time.monotonic() - started, 1)
    log.info("shard scored", extra={"summary": summary})
    return summary
