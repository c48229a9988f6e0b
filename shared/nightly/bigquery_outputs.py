"""BigQuery adapter of ``NightlyOutputs``: the model steps' tables, read for one run.

Tables and columns are those of ``shared.nightly.context`` (written by the model steps):
``shopper_product_scores``, ``product_complements``, ``shopper_spend_profiles``,
``shopper_new_products``, in the
read models' dataset. Rows are streamed page by page (``list_rows`` of the query's
result), never all held as client objects at once; ``shopper_batches`` packs each scored
shopper's outputs into one row, materialized and read back with the Storage Read API
(``BigQueryWarehouse.stream``), batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from google.cloud import bigquery

from shared.decisions.compiler import Complement, ScoredProduct, SpendProfile
from shared.nightly.service import ShopperOutputs
from shared.nightly.shards import BUCKET, WHOLE, Shard
from shared.nightly.tables import OFFER_FEATURES
from shared.platform.bigquery_warehouse import BigQueryWarehouse

TIMEOUT_S = 600
# The offer features packed as ``a|b|c`` (each cast to text: FLOAT64 round-trips).
_OFFER_FEATURES = " || '|' || ".join(
    f"CAST(COALESCE({c.name}, 0) AS STRING)" for c in OFFER_FEATURES
)
PAGE_SIZE = 20_000


def _spend_profile(row: Mapping[str, Any]) -> SpendProfile:
    """A ``shopper_spend_profiles`` row (or a packed row holding its columns)."""
    return SpendProfile(
        baskets=int(row["baskets"] or 0),
        value_p25=_money(row["value_p25"]),
        value_p50=_money(row["value_p50"]),
        value_p75=_money(row["value_p75"]),
        value_p90=_money(row["value_p90"]),
        visits_per_week=float(row["visits_per_week"] or 0),
    )


def _run_parameter(run_id: str) -> bigquery.QueryJobConfig:
    """The job configuration of a query on one run's rows (parameter ``@run_id``)."""
    return bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("run_id", "STRING", run_id)]
    )


def _money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(Decimal("0.01"))


class BigQueryNightlyOutputs:
    def __init__(self, client: Any, project: str, dataset: str, read_client: Any = None) -> None:
        self._client = client
        self._prefix = f"{project}.{dataset}"
        self._warehouse = BigQueryWarehouse(client, project, dataset, [], read_client)

    def _rows(self, sql: str, run_id: str) -> Iterator[Any]:
        job = self._client.query(sql, job_config=_run_parameter(run_id))
        yield from job.result(timeout=TIMEOUT_S, page_size=PAGE_SIZE)

    def delete_run(self, run_id: str, tables: Sequence[str]) -> dict[str, int]:
        """One DELETE a table; each is clustered by ``run_id`` first, so BigQuery reads
        the run's blocks only (tables.py)."""
        deleted: dict[str, int] = {}
        for table in tables:
            job = self._client.query(
                f"DELETE FROM `{self._prefix}.{table}` WHERE run_id = @run_id",
                job_config=_run_parameter(run_id),
            )
            job.result(timeout=TIMEOUT_S)
            deleted[table] = int(job.num_dml_affected_rows or 0)
        return deleted

    def scores(self, run_id: str, shard: Shard = WHOLE) -> Iterator[tuple[str, str, ScoredProduct]]:
        for row in self._rows(
            "SELECT retailer_id, shopper_id, product_id, rank, score "
            f"FROM `{self._prefix}.shopper_product_scores` WHERE run_id = @run_id"
            f" AND {shard.predicate()}",
            run_id,
        ):
            yield (
                row["retailer_id"],
                row["shopper_id"],
                ScoredProduct(str(row["product_id"]), int(row["rank"]), float(row["score"])),
            )

    def complements(
        self, run_id: str, shard: Shard = WHOLE, triggers: int | None = None
    ) -> Iterator[tuple[str, Complement]]:
        sql = (
            "SELECT retailer_id, product_id, complement_id, lift, support "
            f"FROM `{self._prefix}.product_complements` WHERE run_id = @run_id"
        )
        if triggers is not None:
            sql = (
                "SELECT c.retailer_id, c.product_id, c.complement_id, c.lift, c.support "
                f"FROM `{self._prefix}.product_complements` c JOIN ("
                "SELECT DISTINCT retailer_id, product_id "
                f"FROM `{self._prefix}.shopper_product_scores` WHERE run_id = @run_id "
                f"AND rank <= {int(triggers)} AND {shard.predicate()}) t "
                "ON t.retailer_id = c.retailer_id AND t.product_id = c.product_id "
                "WHERE c.run_id = @run_id"
            )
        for row in self._rows(sql, run_id):
            yield (
                row["retailer_id"],
                Complement(
                    str(row["product_id"]),
                    str(row["complement_id"]),
                    float(row["lift"]),
                    float(row["support"] or 0),
                ),
            )

    def profiles(
        self, run_id: str, shard: Shard = WHOLE
    ) -> Iterator[tuple[str, str, SpendProfile]]:
        for row in self._rows(
            "SELECT retailer_id, shopper_id, baskets, value_p25, value_p50, value_p75, "
            "value_p90, visits_per_week "
            f"FROM `{self._prefix}.shopper_spend_profiles` WHERE run_id = @run_id"
            f" AND {shard.predicate()}",
            run_id,
        ):
            yield (
                row["retailer_id"],
                row["shopper_id"],
                _spend_profile(row),
            )

    def new_products(
        self, run_id: str, shard: Shard = WHOLE
    ) -> Iterator[tuple[str, str, str, int]]:
        for row in self._rows(
            "SELECT retailer_id, shopper_id, product_id, rank "
            f"FROM `{self._prefix}.shopper_new_products` WHERE run_id = @run_id"
            f" AND {shard.predicate()}",
            run_id,
        ):
            yield (
                row["retailer_id"],
                row["shopper_id"],
                str(row["product_id"]),
                int(row["rank"]),
            )

    def shopper_batches(
        self, run_id: str, shard: Shard, batch: int
    ) -> Iterator[list[ShopperOutputs]]:
        where = f"run_id = @run_id AND {shard.predicate()}"
        sql = f"""
WITH s AS (
  SELECT retailer_id, shopper_id, MAX({BUCKET}) AS {BUCKET},
         STRING_AGG(product_id || '|' || CAST(rank AS STRING)
         || '|' || CAST(score AS STRING), ';') AS scores
  FROM `{self._prefix}.shopper_product_scores` WHERE {where} GROUP BY retailer_id, shopper_id
), n AS (
  SELECT retailer_id, shopper_id,
         STRING_AGG(product_id || '|' || CAST(rank AS STRING), ';') AS news
  FROM `{self._prefix}.shopper_new_products` WHERE {where} GROUP BY retailer_id, shopper_id
), p AS (
  SELECT retailer_id, shopper_id, baskets, value_p25, value_p50, value_p75, value_p90,
         visits_per_week
  FROM `{self._prefix}.shopper_spend_profiles` WHERE {where}
), o AS (
  SELECT retailer_id, shopper_id,
         STRING_AGG(campaign_id || '|' || {_OFFER_FEATURES}, ';') AS offers
  FROM `{self._prefix}.shopper_offer_features` WHERE {where} GROUP BY retailer_id, shopper_id
)
SELECT s.retailer_id, s.shopper_id, s.{BUCKET}, s.scores, n.news, p.baskets, p.value_p25,
       p.value_p50, p.value_p75, p.value_p90, p.visits_per_week,
       p.shopper_id IS NOT NULL AS has_profile, o.offers
FROM s
LEFT JOIN n ON n.retailer_id = s.retailer_id AND n.shopper_id = s.shopper_id
LEFT JOIN p ON p.retailer_id = s.retailer_id AND p.shopper_id = s.shopper_id
LEFT JOIN o ON o.retailer_id = s.retailer_id AND o.shopper_id = s.shopper_id
"""
        for rows in self._warehouse.stream(
            sql, {"run_id": run_id}, batch_rows=batch, slice_by=BUCKET
        ):
            yield [_shopper(row) for row in rows]


def _shopper(row: Mapping[str, Any]) -> ShopperOutputs:
    """One packed row (product ids hold neither ``|`` nor ``;``) back to its outputs."""
    scores = []
    for item in str(row["scores"] or "").split(";"):
        if item:
            product, rank, score = item.rsplit("|", 2)
            scores.append(ScoredProduct(product, int(rank), float(score)))
    ranked = []
    for item in str(row["news"] or "").split(";"):
        if item:
            product, rank = item.rsplit("|", 1)
            ranked.append((int(rank), product))
    profile = _spend_profile(row) if row["has_profile"] else None
    offers: dict[str, tuple[float, ...]] = {}
    for item in str(row.get("offers") or "").split(";"):
        if item:
            campaign, *values = item.split("|")
            offers[campaign] = tuple(float(v) for v in values)
    return ShopperOutputs(
        str(row["retailer_id"]),
        str(row["shopper_id"]),
        sorted(scores, key=lambda s: s.rank),
        profile,
        [p for _, p in sorted(ranked)],
        offers,
    )
