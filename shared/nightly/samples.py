"""Seeded hash samples of a run's shoppers, taken inside the warehouse.

A shopper is in a sample when the hash of a salted ``retailer/shopper`` pair falls under
``size / available``: a uniform sample of about ``size`` shoppers, independent of their
behaviour, stable from night to night (a shopper does not flip in and out), and computed
inside BigQuery, so the rows of the others are never read. The hash is taken once per
shopper (on ``nightly_shoppers``); the tables a step reads keep the sample's rows by a
semi-join on the pair, never a hash per row. Each use has its own salt, so the training
and the evaluation samples are independent draws.
"""

from __future__ import annotations

from datetime import datetime

from shared.nightly.context import StepContext
from shared.nightly.features import HISTORY_DAYS, table_ref, timestamp_literal
from shared.nightly.tables import NIGHTLY_SHOPPERS

SAMPLE_SCALE = 1_000_000
ROLES = ("train", "evaluate", "score")
PAIR = "CONCAT(retailer_id, '/', shopper_id)"


def hash_sample(
    ctx: StepContext, role: str, size: int | None, salt: str
) -> tuple[str | None, dict[str, object]]:
    """The SQL predicate (on ``retailer_id``, ``shopper_id``; parameter ``run_id``) of
    about ``size`` of the ``role`` boundary's shoppers (None: every shopper, when ``size``
    is None or at least the shoppers available), and what it is."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if size is None:
        return None, {"sample": "all"}
    (row,) = ctx.warehouse.query(
        f"SELECT COUNT(DISTINCT {PAIR}) AS n "
        f"FROM {table_ref(ctx, NIGHTLY_SHOPPERS.name)} WHERE run_id = @run_id AND role = @role",
        {"run_id": ctx.run_id, "role": role},
    )
    available = int(row["n"])
    if available <= size:
        return None, {"sample": "all", "shoppers_available": available}
    cut = int(SAMPLE_SCALE * size / available)
    # Literals: the salt is a constant of the code, the role one of the boundaries' roles.
    hashed = f"FARM_FINGERPRINT(CONCAT('{salt}/', retailer_id, '/', shopper_id))"
    sampled = f"MOD(MOD({hashed}, {SAMPLE_SCALE}) + {SAMPLE_SCALE}, {SAMPLE_SCALE}) < {cut}"
    predicate = (
        f"{PAIR} IN (SELECT DISTINCT {PAIR} FROM {table_ref(ctx, NIGHTLY_SHOPPERS.name)} "
        f"WHERE run_id = @run_id AND role = '{role}' AND {sampled})"
    )
    return predicate, {
        "sample": "hash",
        "shoppers_available": available,
        "sample_fraction": round(cut / SAMPLE_SCALE, 6),
    }


POOL_SALT = "cartwise-neighbour-pool"  # the pool's seed: the same neighbours every night


def pool_where(ctx: StepContext, boundary: datetime) -> str:
    """SQL true for the neighbour pool at ``boundary``: per retailer, the
    ``ctx.neighbour_pool`` shoppers of the year before it with the smallest salted hash (a
    uniform sample, stable from night to night; every shopper while a retailer has
    fewer)."""
    at = timestamp_literal(boundary)
    hashed = f"FARM_FINGERPRINT(CONCAT('{POOL_SALT}/', retailer_id, '/', shopper_id))"
    return (
        f"{PAIR} IN (SELECT pooled FROM ("
        f"SELECT {PAIR} AS pooled, ROW_NUMBER() OVER "
        f"(PARTITION BY retailer_id ORDER BY {hashed}, shopper_id) AS n FROM ("
        f"SELECT DISTINCT retailer_id, shopper_id FROM {table_ref(ctx, 'sold_products')} "
        f"WHERE occurred_at < {at} "
        f"AND occurred_at >= TIMESTAMP_SUB({at}, INTERVAL {HISTORY_DAYS} DAY))) "
        f"WHERE n <= {int(ctx.neighbour_pool)})"
    )
