"""BigQuery adapters of the campaigns function: the product catalogue check.

(The report's queries run through ``BigQueryWarehouse.query``: shared/campaigns/report.py.)
A product is known at a set of retailers when a read model has seen it there: sold,
added to a basket or viewed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.cloud import bigquery

TIMEOUT_S = 60.0


def known_products_sql(ref: str) -> str:
    seen = " UNION ALL ".join(
        f"SELECT product_id FROM {ref}.{table} "  # noqa: S608 (declared table names)
        "WHERE retailer_id IN UNNEST(JSON_VALUE_ARRAY(@retailers)) "
        "AND product_id IN UNNEST(JSON_VALUE_ARRAY(@products))"
        for table in ("sold_products", "basket_changes", "page_views")
    )
    return f"SELECT DISTINCT product_id FROM ({seen}) AS seen"  # noqa: S608


class BigQueryProductCatalog:
    def __init__(self, client: Any, project: str, dataset: str) -> None:
        self._client = client
        self._sql = known_products_sql(f"`{project}.{dataset}`")

    def unknown(self, retailer_ids: Sequence[str], product_ids: Sequence[str]) -> set[str]:
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(
                    "retailers", "STRING", json.dumps(list(retailer_ids))
                ),
                bigquery.ScalarQueryParameter("products", "STRING", json.dumps(list(product_ids))),
            ]
        )
        job = self._client.query(self._sql, job_config=config, timeout=TIMEOUT_S)
        known = {row["product_id"] for row in job.result(timeout=TIMEOUT_S)}
        return set(product_ids) - known
