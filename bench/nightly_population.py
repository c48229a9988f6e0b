"""A synthetic population for the nightly at scale, resampled from the Complete Journey.

    .venv/bin/python -m bench.nightly_population --shoppers 10000

Source: the Complete Journey's households in the stack's read models (after ``cartwise
backfill --weeks 1-53``): the simulator's three retailers and ``hh-`` ids only, not the
shoppers that tests and other benches leave in the same tables (``journey_households``).
Shopper *j* is a household drawn with replacement (seeded) and given a new id ``syn{j}``,
new event, session and order ids, its whole history moved by a seeded offset of -3..+3
days and -60..+60 minutes (the weekly rhythm kept, the calendar smeared), and about one
line in ten with its quantity moved by one (at least 1; amounts and order totals
recomputed). The read models hold no store column (a line belongs to a retailer, not to a
store), so there is no store to shift: each copy keeps its household's retailer.

The draw (``population_rows``: j -> household, shift) is made in Python and loaded as a
small table, ``population``; the rows themselves are copied inside the warehouse, one
``INSERT ... SELECT`` per table and chunk of ``CHUNK_SHOPPERS`` (a join of the draw on
the source's ``orders`` and ``sold_products``), into a dataset of its own,
``cartwise_scale_{n}`` (the two read models the nightly reads and the nightly's tables,
declared as in the stack). 100,000 shoppers (38 million lines) build in ~110 s here;
rows generated in Python and loaded by the bulk loader went at ~12,000 lines/s (~55
minutes). A build cut short is started again from empty tables.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from emulators.config import StackSettings

CHUNK_SHOPPERS = 5_000  # synthetic shoppers per INSERT ... SELECT


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

    from emulators.bootstrap import add_missing_columns
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
        try:
            client.create_table(table, timeout=30)
        except Conflict:  # built by an older checkout: the columns declared since
            add_missing_columns(client, declared, table.reference)


POPULATION = "population"  # the bench's own table: synthetic shopper j -> its household


def journey_households(client: Any, project: str, source: str) -> list[tuple[str, str]]:
    """The Complete Journey's households in the source read models (``cartwise backfill``:
    the simulator's retailers and ``hh-`` ids), not what tests and benches left beside."""
    from shared.journey.tracker_simulator import RETAILERS, SHOPPER_PREFIX

    rows = client.query(
        f"SELECT DISTINCT retailer_id, shopper_id FROM `{project}.{source}.orders` "
        "WHERE retailer_id IN UNNEST(@retailers) AND STARTS_WITH(shopper_id, @prefix) "
        "ORDER BY retailer_id, shopper_id",
        job_config=_params(retailers=list(RETAILERS), prefix=SHOPPER_PREFIX),
    ).result()
    return [(row["retailer_id"], row["shopper_id"]) for row in rows]


def population_rows(
    households: list[tuple[str, str]], shoppers: int, seed: int
) -> list[dict[str, Any]]:
    """Shopper ``syn{j}``: a household drawn with replacement and its seeded time shift."""
    rng = random.Random(seed)
    rows = []
    for j in range(shoppers):
        retailer, household = rng.choice(households)
        shift = timedelta(days=rng.randint(-3, 3), minutes=rng.randint(-60, 60))
        rows.append(
            {
                "j": j,
                "retailer_id": retailer,
                "household_id": household,
                "shopper_id": f"syn{j:07d}",
                "shift_seconds": int(shift.total_seconds()),
            }
        )
    return rows


def lines_sql(project: str, source: str, dataset: str) -> str:
    """Copy the lines of shoppers ``@first``..``@last`` from their households'. One line in
    ten has its quantity moved by one (at least 1): chosen by integer arithmetic on the
    shopper, the line and the day, not a hash (bqemulator evaluates ``FARM_FINGERPRINT``
    outside DuckDB, row by row: docs/NIGHTLY.md)."""
    pick = "MOD(m.j * 104729 + s.line_number * 7919 + UNIX_DATE(DATE(s.occurred_at)) * 31, 20)"
    quantity = (
        f"CASE {pick} WHEN 0 THEN s.quantity + 1 "
        "WHEN 1 THEN GREATEST(1, s.quantity - 1) ELSE s.quantity END"
    )
    return f"""INSERT INTO `{project}.{dataset}.sold_products`
SELECT CONCAT(s.row_id, '/', CAST(m.j AS STRING)), CONCAT(s.event_id, '/', CAST(m.j AS STRING)),
       s.retailer_id, m.shopper_id,
       IF(s.session_id IS NULL, NULL, CONCAT(s.session_id, '-', CAST(m.j AS STRING))),
       TIMESTAMP_ADD(s.occurred_at, INTERVAL m.shift_seconds SECOND),
       TIMESTAMP_ADD(s.ingested_at, INTERVAL m.shift_seconds SECOND),
       CONCAT(s.order_id, '-', CAST(m.j AS STRING)), s.line_number, s.product_id, s.brand,
       s.category, {quantity}, s.unit_price, s.discount, s.unit_price * {quantity} - s.discount
FROM `{project}.{dataset}.{POPULATION}` m
JOIN `{project}.{source}.sold_products` s
  ON s.retailer_id = m.retailer_id AND s.shopper_id = m.household_id
WHERE m.j BETWEEN @first AND @last"""


def orders_sql(project: str, source: str, dataset: str) -> str:
    """Copy the orders of shoppers ``@first``..``@last``, totals recomputed from their
    copied lines."""
    return f"""INSERT INTO `{project}.{dataset}.orders`
WITH copied AS (
  SELECT order_id, SUM(quantity) AS items, SUM(unit_price * quantity) AS gross,
         SUM(discount) AS discount
  FROM `{project}.{dataset}.sold_products`
  WHERE shopper_id IN (SELECT shopper_id FROM `{project}.{dataset}.{POPULATION}`
                       WHERE j BETWEEN @first AND @last)
  GROUP BY order_id
)
SELECT CONCAT(o.row_id, '/', CAST(m.j AS STRING)), CONCAT(o.event_id, '/', CAST(m.j AS STRING)),
       o.retailer_id, m.shopper_id,
       IF(o.session_id IS NULL, NULL, CONCAT(o.session_id, '-', CAST(m.j AS STRING))),
       TIMESTAMP_ADD(o.occurred_at, INTERVAL m.shift_seconds SECOND),
       TIMESTAMP_ADD(o.ingested_at, INTERVAL m.shift_seconds SECOND),
       CONCAT(o.order_id, '-', CAST(m.j AS STRING)),
       IF(c.order_id IS NULL, o.total, c.gross - c.discount), o.line_count,
       IFNULL(c.items, o.item_count), IFNULL(c.gross, o.gross_amount),
       IFNULL(c.discount, o.discount_amount)
FROM `{project}.{dataset}.{POPULATION}` m
JOIN `{project}.{source}.orders` o
  ON o.retailer_id = m.retailer_id AND o.shopper_id = m.household_id
LEFT JOIN copied c ON c.order_id = CONCAT(o.order_id, '-', CAST(m.j AS STRING))
WHERE m.j BETWEEN @first AND @last"""


def load_population(client: Any, project: str, dataset: str, rows: list[dict[str, Any]]) -> None:
    """The population table (replaced), by a Parquet load job as the bulk loader's."""
    from google.cloud import bigquery

    from shared.freezer.bigquery_bulk_load import parquet_of
    from shared.platform.resource_model import BigQueryTable, Column

    declared = BigQueryTable(
        dataset=dataset,
        name=POPULATION,
        description="Synthetic shopper j: its household and time shift",
        columns=(
            Column(name="j", type="INT64", description="the synthetic shopper's number"),
            Column(name="retailer_id", type="STRING", description="the household's retailer"),
            Column(name="household_id", type="STRING", description="the source shopper"),
            Column(name="shopper_id", type="STRING", description="the new shopper id"),
            Column(name="shift_seconds", type="INT64", description="the history's shift"),
        ),
    )
    client.load_table_from_file(
        io.BytesIO(parquet_of(declared, rows)),
        f"{project}.{dataset}.{POPULATION}",
        job_config=bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            schema=[bigquery.SchemaField(c.name, c.type) for c in declared.columns],
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        ),
        timeout=600,
    ).result(timeout=600)


def _params(**values: Any) -> Any:
    from google.cloud import bigquery

    def one(name: str, value: Any) -> Any:
        if isinstance(value, list):
            return bigquery.ArrayQueryParameter(name, "STRING", value)
        kind = "INT64" if isinstance(value, int) else "STRING"
        return bigquery.ScalarQueryParameter(name, kind, value)

    return bigquery.QueryJobConfig(query_parameters=[one(k, v) for k, v in values.items()])


def build(
    shoppers: int,
    seed: int = 8451,
    source_dataset: str | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Writes the population of ``shoppers`` (if not there yet); returns what it did."""

    from shared.platform import clients
    from shared.system.resources import BIGQUERY_DATASET

    env = stack_env()
    project = env["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, env["BIGQUERY_EMULATOR_HOST"])
    dataset = dataset_name(shoppers)
    create_tables(client, project, dataset)
    (present,) = client.query(
        f"SELECT COUNT(DISTINCT shopper_id) AS n FROM `{project}.{dataset}.orders`"
    ).result()
    if int(present["n"]) >= shoppers:
        return {"dataset": dataset, "shoppers": int(present["n"]), "built": False}
    started = time.monotonic()
    source = source_dataset or BIGQUERY_DATASET
    households = journey_households(client, project, source)
    if not households:
        raise SystemExit(f"no orders in {source}: run `cartwise backfill --weeks 1-53` first")
    load_population(client, project, dataset, population_rows(households, shoppers, seed))
    for table in ("orders", "sold_products"):  # a build cut short starts again from empty
        client.query(f"DELETE FROM `{project}.{dataset}.{table}` WHERE TRUE").result()
    for first in range(0, shoppers, CHUNK_SHOPPERS):
        chunk = _params(first=first, last=min(shoppers, first + CHUNK_SHOPPERS) - 1)
        for sql in (lines_sql(project, source, dataset), orders_sql(project, source, dataset)):
            client.query(sql, job_config=chunk).result(timeout=3600)
        if progress:
            progress(min(shoppers, first + CHUNK_SHOPPERS), shoppers, time.monotonic() - started)
    rows = {
        table: next(
            iter(client.query(f"SELECT COUNT(*) AS n FROM `{project}.{dataset}.{table}`").result())
        )["n"]
        for table in ("orders", "sold_products")
    }
    return {
        "dataset": dataset,
        "shoppers": shoppers,
        "source_households": len(households),
        "built": True,
        "rows": rows,
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
