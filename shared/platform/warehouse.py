"""The SQL warehouse port: statements, queries, bulk row replacement (BigQuery's adapter:
``shared.platform.bigquery_warehouse``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

Row = dict[str, Any]


class Warehouse(Protocol):
    """The SQL warehouse (BigQuery; bqemulator locally)."""

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement (CREATE TABLE AS, MERGE, DELETE ...), waiting for it."""
        ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a query and return its rows as dicts."""
        ...

    def stream(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        batch_rows: int = 5_000,
        slice_by: str | None = None,
    ) -> Iterator[list[Row]]:
        """Run a query and yield its rows in batches of at most ``batch_rows``, never all
        held at once (the order of the rows is not kept: one row should be one unit).
        ``slice_by``: an INT64 column of the result; the result is then read in slices of
        consecutive values of it, each of about ``batch_rows`` rows (one value's rows at
        least), so that no read holds more whatever the server's message size."""
        ...

    def replace_rows(
        self, table: str, run_id: str, rows: Sequence[Row], where: str | None = None
    ) -> None:
        """Delete the table's rows of ``run_id`` (and of ``where``, a SQL predicate: one
        shard's shoppers), then write ``rows`` (bulk, not streaming)."""
        ...

    def append_rows(self, table: str, rows: Sequence[Row]) -> None:
        """Write ``rows`` after those already there (bulk, one load job): the batches of a
        shard after ``replace_rows`` deleted its old rows."""
        ...
