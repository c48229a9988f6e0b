"""``Warehouse`` on google-cloud-bigquery: statements, queries and bulk row replacement.

Query parameters are typed from their Python values. ``replace_rows`` deletes the run's
rows, then writes the new ones in one Parquet load job (no streaming buffer, so the rows
can be deleted again by a re-run at once, on BigQuery as on bqemulator); ``append_rows``
adds one more batch the same way. ``stream`` materializes a query's result into a table
of its own (``_stream_*``, expiring after a day in case its reader dies) and reads it
back with the BigQuery Storage Read API, one Arrow record batch at a time (bqemulator
serves read sessions on its gRPC port, ``BIGQUERY_STORAGE_EMULATOR_HOST``), then drops it.
The server decides a batch's size (bqemulator sends a whole table as one), so with
``slice_by`` the table is read one session per slice of a column's values, each of about
``batch_rows`` rows: memory then holds one slice, whatever the result's size.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.cloud import bigquery

from shared.platform.resource_model import BigQueryTable, Column
from shared.platform.warehouse import Row

log = logging.getLogger(__name__)

TIMEOUT_S = 900.0

_ARROW_TYPES: dict[str, Any] = {
    "STRING": pa.string(),
    "INT64": pa.int64(),
    "FLOAT64": pa.float64(),
    "BOOL": pa.bool_(),
    "NUMERIC": pa.decimal128(38, 9),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATE": pa.date32(),
}


def _parameter(name: str, value: Any) -> bigquery.ScalarQueryParameter:
    if isinstance(value, bool):
        kind = "BOOL"
    elif isinstance(value, int):
        kind = "INT64"
    elif isinstance(value, float):
        kind = "FLOAT64"
    elif isinstance(value, Decimal):
        kind = "NUMERIC"
    elif isinstance(value, datetime):
        kind = "TIMESTAMP"
    elif isinstance(value, date):
        kind = "DATE"
    elif isinstance(value, str):
        kind = "STRING"
    else:
        raise TypeError(f"query parameter {name}: unsupported type {type(value).__name__}")
    return bigquery.ScalarQueryParameter(name, kind, value)


def _job_config(params: Mapping[str, Any] | None) -> bigquery.QueryJobConfig:
    return bigquery.QueryJobConfig(
        query_parameters=[_parameter(k, v) for k, v in (params or {}).items()]
    )


def _arrow_column(column: Column, rows: Sequence[Row]) -> Any:
    values = [row.get(column.name) for row in rows]
    if column.type == "NUMERIC":
        values = [None if v is None else Decimal(str(v)) for v in values]
    return pa.array(values, type=_ARROW_TYPES[column.type])


def parquet_of(table: BigQueryTable, rows: Sequence[Row]) -> bytes:
    """The rows as one Parquet file, columns in declaration order and types."""
    arrow = pa.table(
        [_arrow_column(c, rows) for c in table.columns], names=[c.name for c in table.columns]
    )
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd")
    return buffer.getvalue()


class BigQueryWarehouse:
    """The warehouse port; ``tables`` are the declarations ``replace_rows`` may write."""

    def __init__(
        self,
        client: Any,
        project: str,
        dataset: str,
        tables: Sequence[BigQueryTable],
        read_client: Any = None,
    ) -> None:
        self._client = client
        self._project = project
        self._dataset = dataset
        self._tables = {t.name: t for t in tables}
        self._read_client = read_client  # BigQueryReadClient: None pages through REST

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        job = self._client.query(sql, job_config=_job_config(params), timeout=TIMEOUT_S)
        job.result(timeout=TIMEOUT_S)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        job = self._client.query(sql, job_config=_job_config(params), timeout=TIMEOUT_S)
        result = job.result(timeout=TIMEOUT_S, page_size=50_000)
        return [dict(row.items()) for row in result]

    def stream(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        batch_rows: int = 5_000,
        slice_by: str | None = None,
    ) -> Iterator[list[Row]]:
        name = f"_stream_{uuid.uuid4().hex}"
        target = f"{self._project}.{self._dataset}.{name}"
        self.execute(f"CREATE TABLE `{target}` AS {sql}", params)
        try:
            table = self._client.get_table(target)
            table.expires = datetime.now(UTC) + timedelta(days=1)
            self._client.update_table(table, ["expires"])
            batches: Iterator[Any]
            if self._read_client is not None and slice_by is not None:
                batches = self._read_slices(table, target, slice_by, batch_rows)
            else:
                rows = self._client.list_rows(table, page_size=batch_rows)
                batches = (
                    rows.to_arrow_iterable(bqstorage_client=self._read_client)
                    if self._read_client is not None
                    else (page for page in rows.pages)
                )
            pending: list[Row] = []
            for batch in batches:
                for part in _parts(batch, batch_rows):
                    pending.extend(part)
                    if len(pending) >= batch_rows:
                        yield pending[:batch_rows]
                        pending = pending[batch_rows:]  # less than a part left over
            if pending:
                yield pending
        finally:
            self._client.delete_table(target, not_found_ok=True)

    def _read_slices(
        self, table: Any, target: str, column: str, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """The materialized result, one read session per slice of ``column``'s values
        (the session's ``row_restriction``, a SQL filter): a server may send a whole table
        in one message (bqemulator does: 29,787 packed rows, 351 MiB, in one batch), so
        only the slice bounds what a read holds."""
        from google.cloud.bigquery_storage_v1 import types

        counts = self.query(
            f"SELECT {column} AS value, COUNT(*) AS n FROM `{target}` "  # noqa: S608
            f"GROUP BY {column} ORDER BY {column}"
        )
        if any(r["value"] is None for r in counts):
            raise ValueError(f"stream sliced by {column}: the result has rows without one")
        name = f"projects/{table.project}/datasets/{table.dataset_id}/tables/{table.table_id}"
        for low, high in value_slices([(int(r["value"]), int(r["n"])) for r in counts], batch_rows):
            session = self._read_client.create_read_session(
                parent=f"projects/{self._project}",
                read_session=types.ReadSession(
                    table=name,
                    data_format=types.DataFormat.ARROW,
                    read_options=types.ReadSession.TableReadOptions(
                        row_restriction=f"{column} BETWEEN {low} AND {high}"
                    ),
                ),
                max_stream_count=1,
            )
            for stream in session.streams:
                reader = self._read_client.read_rows(stream.name)
                for page in reader.rows(session).pages:
                    yield page.to_arrow()

    def replace_rows(
        self, table: str, run_id: str, rows: Sequence[Row], where: str | None = None
    ) -> None:
        declared = self._tables[table]
        target = f"{self._project}.{self._dataset}.{declared.name}"
        delete = f"DELETE FROM `{target}` WHERE run_id = @run_id"  # noqa: S608
        if where:
            delete += f" AND ({where})"
        self.execute(delete, {"run_id": run_id})
        self.append_rows(table, rows)

    def append_rows(self, table: str, rows: Sequence[Row]) -> None:
        declared = self._tables[table]
        target = f"{self._project}.{self._dataset}.{declared.name}"
        if not rows:
            return
        self._client.load_table_from_file(
            io.BytesIO(parquet_of(declared, rows)),
            target,
            job_config=bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                schema=[
                    bigquery.SchemaField(c.name, c.type, mode=c.mode) for c in declared.columns
                ],
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            ),
            timeout=TIMEOUT_S,
        ).result(timeout=TIMEOUT_S)
        log.info("rows written", extra={"table": table, "rows": len(rows)})


def value_slices(counts: Sequence[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    """Consecutive ``(low, high)`` ranges covering the values of ``counts`` (``(value,
    rows)``, ascending), each of at most ``rows`` rows, unless one value alone holds more
    (its range is then that value alone)."""
    slices: list[tuple[int, int]] = []
    current: list[int] = []  # the values of the slice being filled
    held = 0
    for value, n in counts:
        if current and held + n > rows:
            slices.append((current[0], current[-1]))
            current, held = [], 0
        current.append(value)
        held += n
    if current:
        slices.append((current[0], current[-1]))
    return slices


def _parts(batch: Any, rows: int) -> Iterator[list[Row]]:
    """A read batch as Python rows, ``rows`` at a time: a Storage Read batch can hold many
    pages' worth (bqemulator sends a whole small table in one), and only its slices are
    turned into Python objects, so that a task holds at most about two slices of them."""
    if isinstance(batch, pa.RecordBatch | pa.Table):
        for offset in range(0, batch.num_rows, rows):
            yield batch.slice(offset, rows).to_pylist()
    else:
        yield [dict(row.items()) for row in batch]
