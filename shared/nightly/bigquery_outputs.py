"""BigQuery adapter of ``NightlyOutputs``: the model steps' tables, read for one run.

Tables and columns are those of ``shared.nightly.context`` (written by the model steps):
``shopper_product_scores``, ``product_complements``, ``shopper_spend_profiles``,
``shopper_new_products``, in the
read models' dataset. Rows are streamed page by page (``list_rows`` of the query's
result), never all held as client objects at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from google.cloud import bigquery

from shared.decisions.compiler import Complement, ScoredProduct, SpendProfile
from shared.nightly.shards import WHOLE, Shard

TIMEOUT_S = 600
PAGE_SIZE = 20_000


def _money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(Decimal("0.01"))


class BigQueryNightlyOutputs:
    def __init__(self, client: Any, project: str, dataset: str) -> None:
        self._client = client
        self._prefix = f"{project}.{dataset}"

    def _rows(self, sql: str, run_id: str) -> Iterator[Any]:
        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("run_id", "STRING", run_id)]
        )
        job = self._client.query(sql, job_config=config)
        yield from job.result(timeout=TIMEOUT_S, page_size=PAGE_SIZE)

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

    def complements(self, run_id: str) -> Iterator[tuple[str, Complement]]:
        for row in self._rows(
            "SELECT retailer_id, product_id, complement_id, lift, support "
            f"FROM `{self._prefix}.product_complements` WHERE run_id = @run_id",
            run_id,
        ):
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
                SpendProfile(
                    baskets=int(row["baskets"] or 0),
                    value_p25=_money(row["value_p25"]),
                    value_p50=_money(row["value_p50"]),
                    value_p75=_money(row["value_p75"]),
                    value_p90=_money(row["value_p90"]),
                    visits_per_week=float(row["visits_per_week"] or 0),
                ),
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
