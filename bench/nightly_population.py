"""A synthetic population for the nightly at scale, resampled from the Complete Journey.

    .venv/bin/python -m bench.nightly_population --shoppers 10000

Reads the ``orders`` and ``sold_products`` of the stack's read models (after ``cartwise
backfill --weeks 1-53``: the source households), then writes ``--shoppers`` synthetic
shoppers into a dataset of their own, ``cartwise_scale_{n}`` (the read models' two
tables the nightly reads, and the nightly's tables, declared as in the stack): shopper
*j* is a household drawn with replacement (seeded) and given a new id ``syn{j}``, new
event and order ids, its whole history moved by a seeded offset of -3..+3 days and
-60..+60 minutes (the weekly rhythm kept, the calendar smeared), and about one line in
ten with its quantity moved by one (at least 1; order totals recomputed). The read models
hold no store column (a line belongs to a retailer, not to a store), so there is no store
to shift: each copy keeps its household's retailer. The rows go through the project's
own bulk loader (``BigQueryBulkLoader``: a Parquet load job into staging, then a MERGE
on ``row_id``), so building the same size twice inserts nothing new.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from emulators.config import StackSettings

CHUNK_SHOPPERS = 1_000  # synthetic shoppers per bulk load
NAMESPACE = uuid.UUID("6f1c7a5e-3d0b-4a3e-9c8f-2b1e5d7a9c01")


def stack_env() -> dict[str, str]:
    """The stack's environment (``stack.env``), also put into this process's."""
    env = dict(
        line.split("=", 1)
        for line in StackSettings().env_file.read_text().splitlines()
        if "=" in line
    )
    os.environ.update(env)
    return env


def dataset_name(shoppers: int) -> str:
    return f"cartwise_scale_{shoppers}"


def create_tables(client: Any, project: str, dataset: str) -> None:
    """The dataset, the read models the nightly reads, and the nightly's own tables."""
    from google.api_core.exceptions import Conflict
    from google.cloud import bigquery

    from shared.freezer.read_models import ORDERS, SOLD_PRODUCTS
    from shared.nightly.tables import NIGHTLY_TABLES

    with contextlib.suppress(Conflict):
        client.create_dataset(bigquery.Dataset(f"{project}.{dataset}"), timeout=30)
    for declared in (ORDERS, SOLD_PRODUCTS, *NIGHTLY_TABLES):
        table = bigquery.Table(
            f"{project}.{dataset}.{declared.name}",
            schema=[bigquery.SchemaField(c.name, c.type, mode=c.mode) for c in declared.columns],
        )
        if declared.partition_field:
            table.time_partitioning = bigquery.TimePartitioning(
                type_=declared.partition_type, field=declared.partition_field
            )
        if declared.clustering:
            table.clustering_fields = list(declared.clustering)
        with contextlib.suppress(Conflict):
            client.create_table(table, timeout=30)


def _source(client: Any, project: str, dataset: str, table: str) -> dict[Any, list[dict[str, Any]]]:
    by_household: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in client.list_rows(f"{project}.{dataset}.{table}", page_size=50_000):
        by_household[(row["retailer_id"], row["shopper_id"])].append(dict(row.items()))
    return by_household


def _moved(row: dict[str, Any], j: int, shift: timedelta) -> dict[str, Any]:
    out = dict(row)
    event = str(uuid.uuid5(NAMESPACE, f"{row['event_id']}/{j}"))
    out["row_id"] = str(row["row_id"]).replace(str(row["event_id"]), event)
    out["event_id"] = event
    out["shopper_id"] = f"syn{j:07d}"
    out["session_id"] = f"{row['session_id']}-{j}" if row.get("session_id") else None
    out["order_id"] = f"{row['order_id']}-{j}"
    for moment in ("occurred_at", "ingested_at"):
        at = row[moment]
        out[moment] = (at + shift if isinstance(at, datetime) else at).isoformat()
    return out


def synthetic_rows(
    j: int,
    orders: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    rng: random.Random,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shopper ``j``'s orders and lines, from one source household's."""
    shift = timedelta(days=rng.randint(-3, 3), minutes=rng.randint(-60, 60))
    sold = []
    totals: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for line in lines:
        out = _moved(line, j, shift)
        if rng.random() < 0.1:
            out["quantity"] = max(1, int(line["quantity"]) + rng.choice((-1, 1)))
        price, discount = Decimal(str(line["unit_price"])), Decimal(str(line["discount"]))
        out["amount"] = price * out["quantity"] - discount
        total = totals[out["order_id"]]
        total[0] += out["quantity"]
        total[1] += price * out["quantity"]
        total[2] += discount
        sold.append(out)
    baskets = []
    for order in orders:
        out = _moved(order, j, shift)
        if out["order_id"] in totals:
            items, gross, discount = totals[out["order_id"]]
            out.update(
                item_count=items,
                gross_amount=gross,
                discount_amount=discount,
                total=gross - discount,
            )
        baskets.append(out)
    return baskets, sold


def build(
    shoppers: int,
    seed: int = 8451,
    source_dataset: str | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Writes the population of ``shoppers`` (if not there yet); returns what it did."""
    from shared.freezer.bigquery_bulk_load import BigQueryBulkLoader
    from shared.freezer.read_models import ORDERS, SOLD_PRODUCTS
    from shared.platform import clients
    from shared.system.resources import BIGQUERY_DATASET

    env = stack_env()
    project = env["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, env["BIGQUERY_EMULATOR_HOST"])
    dataset = dataset_name(shoppers)
    create_tables(client, project, dataset)
    (present,) = client.query(
        f"SELECT COUNT(DISTINCT shopper_id) AS n FROM `{project}.{dataset}.orders`"  # noqa: S608
    ).result()
    if int(present["n"]) >= shoppers:
        return {"dataset": dataset, "shoppers": int(present["n"]), "built": False}
    started = time.monotonic()
    source = source_dataset or BIGQUERY_DATASET
    orders = _source(client, project, source, "orders")
    lines = _source(client, project, source, "sold_products")
    households = sorted(orders)
    if not households:
        raise SystemExit(f"no orders in {source}: run `cartwise backfill --weeks 1-53` first")
    tables = [t.model_copy(update={"dataset": dataset}) for t in (ORDERS, SOLD_PRODUCTS)]
    loader = BigQueryBulkLoader(client, project, tables, dataset=dataset)
    rng = random.Random(seed)
    written = {"orders": 0, "sold_products": 0}
    for start in range(0, shoppers, CHUNK_SHOPPERS):
        chunk_orders: list[dict[str, Any]] = []
        chunk_lines: list[dict[str, Any]] = []
        for j in range(start, min(shoppers, start + CHUNK_SHOPPERS)):
            household = rng.choice(households)
            o, s = synthetic_rows(j, orders[household], lines.get(household, []), rng)
            chunk_orders.extend(o)
            chunk_lines.extend(s)
        written["orders"] += loader.load("orders", chunk_orders)
        written["sold_products"] += loader.load("sold_products", chunk_lines)
        if progress:
            progress(min(shoppers, start + CHUNK_SHOPPERS), shoppers, time.monotonic() - started)
    return {
        "dataset": dataset,
        "shoppers": shoppers,
        "source_households": len(households),
        "built": True,
        "rows": written,
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.nightly_population")
    parser.add_argument("--shoppers", type=int, nargs="+", default=[10_000])
    parser.add_argument("--seed", type=int, default=8451)
    args = parser.parse_args(argv)

    def progress(done: int, total: int, seconds: float) -> None:
        print(f"\r  {done:,}/{total:,} shoppers  {seconds:.0f}s", end="", flush=True)

    for size in args.shoppers:
        print(f"population of {size:,} shoppers", flush=True)
        print(f"\n{build(size, args.seed, progress=progress)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
