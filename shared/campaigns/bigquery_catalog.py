"""BigQuery adapter of the campaigns function's catalogue (``catalogue.Catalogue``).

(The report's queries run through ``BigQueryWarehouse.query``: shared/campaigns/report.py.)
A product, brand or category is known at a set of retailers when a read model has seen it
at one of them: ``sold_products``, ``basket_changes``, ``page_views`` (products and
categories; brands: the first two, ``page_views`` has no brand column). Known is the
engine's exact match (shared/campaigns/catalogue.py); searches are case-insensitive.

What each query costs (BigQuery bills the bytes of the columns it reads): the read models
are partitioned by day of ``occurred_at`` and clustered by ``retailer_id`` then
``shopper_id``. No query filters on ``occurred_at`` (known means seen in the whole
retention, as before), so every partition is read, but only the blocks of the scoped
retailers (clustering), and only these columns:

- ``unknown_products``: ``retailer_id``, ``product_id`` of the three tables; when some are
  unknown, once more the same columns (the candidates of the suggestions);
- ``unknown_brands``: ``retailer_id``, ``brand`` of ``sold_products`` and
  ``basket_changes`` (twice when some are unknown); ``unknown_categories``: ``retailer_id``,
  ``category`` of the three (idem);
- ``search_products``: ``retailer_id``, ``product_id``, ``category``, ``occurred_at`` of the
  three, and ``brand`` of the first two (the brand and category last seen);
- ``search_brands``, ``search_categories``: as their ``unknown_*``, once.

The search text filters rows after they are read: it saves no bytes, every keystroke costs
a scan of the retailers' columns (at least BigQuery's 10 MB minimum per table): a picker
should wait for a pause in the typing. Every value is a query parameter; table and column
names come from the declarations below, never from the request. The SQL keeps within what
bqemulator translates (sqlglot to DuckDB): the brand last seen is
``ARRAY_AGG(STRUCT(...) ORDER BY ... LIMIT 1)``, not ``IGNORE NULLS`` with a ``LIMIT``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.cloud import bigquery

from shared.campaigns.catalogue import (
    MAX_CANDIDATES,
    CataloguePage,
    CatalogueQuery,
    NameHit,
    ProductHit,
    page_of,
    suggestions,
    unknown_among,
)

TIMEOUT_S = 60.0

# The tables that carry each column (the read models' declarations, shared/freezer).
_SOURCES: dict[str, tuple[str, ...]] = {
    "product_id": ("sold_products", "basket_changes", "page_views"),
    "brand": ("sold_products", "basket_changes"),
    "category": ("sold_products", "basket_changes", "page_views"),
}
_SCOPE = "retailer_id IN UNNEST(JSON_VALUE_ARRAY(@retailers))"


def _matching(column: str) -> str:
    """Rows whose ``column`` holds ``@text``, case-insensitively (all when it is empty)."""
    return f"(@text = '' OR STRPOS(LOWER({column}), LOWER(@text)) > 0)"


def known_sql(ref: str, column: str) -> str:
    """Which of ``@names`` (a JSON array) some row of the retailers carries, exactly."""
    seen = " UNION ALL ".join(
        f"SELECT {column} AS name FROM {ref}.{table} "  # noqa: S608 (declared names)
        f"WHERE {_SCOPE} AND {column} IN UNNEST(JSON_VALUE_ARRAY(@names))"
        for table in _SOURCES[column]
    )
    return f"SELECT DISTINCT name FROM ({seen}) AS seen"  # noqa: S608


def names_sql(ref: str, column: str) -> str:
    """The distinct values of ``column`` seen at the retailers that hold ``@text``, with
    how many rows saw each: those starting with the text first, then the most seen, then
    by name; ``@limit`` rows from ``@offset``."""
    seen = " UNION ALL ".join(
        f"SELECT {column} AS name FROM {ref}.{table} "  # noqa: S608 (declared names)
        f"WHERE {_SCOPE} AND {column} IS NOT NULL AND {_matching(column)}"
        for table in _SOURCES[column]
    )
    return (
        f"SELECT name, COUNT(*) AS seen FROM ({seen}) AS seen_rows "  # noqa: S608
        "GROUP BY name "
        "ORDER BY STARTS_WITH(LOWER(name), LOWER(@text)) DESC, seen DESC, name "
        "LIMIT @limit OFFSET @offset"
    )


def _last(column: str) -> str:
    """The value of ``column`` on the latest row that has one (NULL if none has): a
    STRUCT, since BigQuery's ARRAY_AGG refuses NULL elements."""
    return (
        f"ARRAY_AGG(STRUCT({column} AS v) ORDER BY {column} IS NULL, occurred_at DESC, "
        f"{column} LIMIT 1)[OFFSET(0)].v"
    )


def products_sql(ref: str) -> str:
    """The products seen at the retailers whose id holds ``@text``, with their brand and
    category as last seen and how many rows saw them (ordered as ``names_sql``)."""

    def rows_of(table: str) -> str:
        brand = "brand" if table in _SOURCES["brand"] else "CAST(NULL AS STRING)"
        return (
            f"SELECT product_id, {brand} AS brand, category, occurred_at "  # noqa: S608
            f"FROM {ref}.{table} "
            f"WHERE {_SCOPE} AND product_id IS NOT NULL AND {_matching('product_id')}"
        )

    seen = " UNION ALL ".join(rows_of(table) for table in _SOURCES["product_id"])
    return (
        f"SELECT product_id, COUNT(*) AS seen, {_last('brand')} AS brand, "  # noqa: S608
        f"{_last('category')} AS category FROM ({seen}) AS seen_rows "
        "GROUP BY product_id "
        "ORDER BY STARTS_WITH(LOWER(product_id), LOWER(@text)) DESC, seen DESC, product_id "
        "LIMIT @limit OFFSET @offset"
    )


def _parameter(name: str, value: str | int) -> bigquery.ScalarQueryParameter:
    return bigquery.ScalarQueryParameter(
        name, "INT64" if isinstance(value, int) else "STRING", value
    )


class BigQueryCatalogue:
    """``Catalogue`` on the read models of ``project.dataset`` (see the module's costs)."""

    def __init__(self, client: Any, project: str, dataset: str) -> None:
        self._client = client
        ref = f"`{project}.{dataset}`"
        self._known = {column: known_sql(ref, column) for column in _SOURCES}
        self._names = {column: names_sql(ref, column) for column in _SOURCES}
        self._products = products_sql(ref)

    def _rows(self, sql: str, **params: str | int) -> list[Any]:
        config = bigquery.QueryJobConfig(
            query_parameters=[_parameter(name, value) for name, value in params.items()]
        )
        job = self._client.query(sql, job_config=config, timeout=TIMEOUT_S)
        return list(job.result(timeout=TIMEOUT_S))

    # --- the campaign check -----------------------------------------------------------------

    def _unknown(
        self, column: str, retailer_ids: Sequence[str], wanted: Sequence[str]
    ) -> dict[str, list[str]]:
        if not wanted:
            return {}
        retailers = json.dumps(sorted(set(retailer_ids)))
        known = self._rows(
            self._known[column], retailers=retailers, names=json.dumps(sorted(set(wanted)))
        )
        unknown = unknown_among(wanted, (row["name"] for row in known))
        if not unknown:
            return {}
        candidates = self._rows(
            self._names[column], retailers=retailers, text="", limit=MAX_CANDIDATES, offset=0
        )
        return suggestions(unknown, (row["name"] for row in candidates))

    def unknown_products(
        self, retailer_ids: Sequence[str], product_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        return self._unknown("product_id", retailer_ids, product_ids)

    def unknown_brands(
        self, retailer_ids: Sequence[str], brands: Sequence[str]
    ) -> dict[str, list[str]]:
        return self._unknown("brand", retailer_ids, brands)

    def unknown_categories(
        self, retailer_ids: Sequence[str], categories: Sequence[str]
    ) -> dict[str, list[str]]:
        return self._unknown("category", retailer_ids, categories)

    # --- the pickers ------------------------------------------------------------------------

    def _page(self, sql: str, retailer_ids: Sequence[str], query: CatalogueQuery) -> list[Any]:
        """A page's rows, and one more; no retailer: none (and no query)."""
        if not retailer_ids:
            return []
        return self._rows(
            sql,
            retailers=json.dumps(sorted(set(retailer_ids))),
            text=query.text,
            limit=query.limit,
            offset=query.offset,
        )

    def search_products(
        self, retailer_ids: Sequence[str], query: CatalogueQuery
    ) -> CataloguePage[ProductHit]:
        rows = self._page(self._products, retailer_ids, query)
        hits = [
            ProductHit(
                product_id=row["product_id"],
                brand=row["brand"],
                category=row["category"],
                seen=row["seen"],
            )
            for row in rows
        ]
        return page_of(hits, query)

    def _search_names(
        self, column: str, retailer_ids: Sequence[str], query: CatalogueQuery
    ) -> CataloguePage[NameHit]:
        rows = self._page(self._names[column], retailer_ids, query)
        return page_of([NameHit(name=row["name"], seen=row["seen"]) for row in rows], query)

    def search_brands(
        self, retailer_ids: Sequence[str], query: CatalogueQuery
    ) -> CataloguePage[NameHit]:
        return self._search_names("brand", retailer_ids, query)

    def search_categories(
        self, retailer_ids: Sequence[str], query: CatalogueQuery
    ) -> CataloguePage[NameHit]:
        return self._search_names("category", retailer_ids, query)
