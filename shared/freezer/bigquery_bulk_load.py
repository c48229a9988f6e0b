"""BigQuery adapter of ``ReadModelLoader``: large row sets as load jobs, idempotently.

The rows of one table go to a staging table in one Parquet load job (the warehouse reads
the file itself: no per-row API call, no streaming buffer), then one MERGE inserts those
whose ``row_id`` is not in the read model yet, and the staging table is dropped. Loading
the same rows again inserts nothing. Works alike on BigQuery and on bqemulator.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core.exceptions import GoogleAPIError
from google.cloud import bigquery

from shared.freezer.read_models import Row
from shared.platform.resource_model import BigQueryTable, Column
from shared.platform.sinks import TransientSinkError

TIMEOUT_S = 600.0

_ARROW_TYPES: dict[str, Any] = {
    "STRING": pa.string(),
    "INT64": pa.int64(),
    "NUMERIC": pa.decimal128(38, 9),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
}


def _column(column: Column, rows: Sequence[Row]) -> Any:
    values = [row.get(column.name) for row in rows]
    if column.type == "NUMERIC":
        values = [None if v is None else Decimal(v) for v in values]
        return pa.array(values, type=_ARROW_TYPES["NUMERIC"])
    if column.type == "TIMESTAMP":
        return pa.array(values, type=pa.string()).cast(_ARROW_TYPES["TIMESTAMP"])
    return pa.array(values, type=_ARROW_TYPES[column.type])


def parquet_of(table: BigQueryTable, rows: Sequence[Row]) -> bytes:
    """The rows as one Parquet file, columns in declaration order and types."""
    arrow = pa.table(
        [_column(c, rows) for c in table.columns], names=[c.name for c in table.columns]
    )
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd")
    return buffer.getvalue()


def _schema(table: BigQueryTable) -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField(c.name, c.type, mode=c.mode) for c in table.columns]


class BigQueryBulkLoader:
    def __init__(
        self,
        client: Any,
        project: str,
        tables: Sequence[BigQueryTable],
        dataset: str | None = None,
    ) -> None:
        self._client = client
        self._project = project
        self._tables = {t.name: t for t in tables}
        self._dataset = dataset

    def _ref(self, table: BigQueryTable, name: str | None = None) -> str:
        return f"{self._project}.{self._dataset or table.dataset}.{name or table.name}"

    def load(self, table: str, rows: Sequence[Row]) -> int:
        """Insert the rows whose ``row_id`` is new; return how many were inserted."""
        if not rows:
            return 0
        declared = self._tables[table]
        staging = self._ref(declared, f"_staging_{declared.name}_{uuid.uuid4().hex[:12]}")
        target = self._ref(declared)
        names = [c.name for c in declared.columns]
        pruning = ""
        if declared.partition_field:
            pruning = f" AND t.{declared.partition_field} BETWEEN @low AND @high"
            moments = sorted(str(r[declared.partition_field]) for r in rows)
        merge = (
            f"MERGE `{target}` t USING `{staging}` s\n"
            f"ON t.row_id = s.row_id{pruning}\n"
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)})\n"
            f"VALUES ({', '.join('s.' + n for n in names)})"
        )
        parameters = (
            [
                bigquery.ScalarQueryParameter("low", "TIMESTAMP", moments[0]),
                bigquery.ScalarQueryParameter("high", "TIMESTAMP", moments[-1]),
            ]
            if declared.partition_field
            else []
        )
        try:
            self._client.load_table_from_file(
                io.BytesIO(parquet_of(declared, rows)),
                staging,
                job_config=bigquery.LoadJobConfig(
                    source_format=bigquery.SourceFormat.PARQUET,
                    schema=_schema(declared),
                    write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                ),
                timeout=TIMEOUT_S,
            ).result(timeout=TIMEOUT_S)
            job = self._client.query(
                merge,
                job_config=bigquery.QueryJobConfig(query_parameters=parameters),
                timeout=TIMEOUT_S,
            )
            job.result(timeout=TIMEOUT_S)
        except (GoogleAPIError, TimeoutError, OSError) as exc:
            raise TransientSinkError(f"bigquery {table}: {exc}") from exc
        finally:
            self._client.delete_table(staging, not_found_ok=True, timeout=TIMEOUT_S)
        return int(job.num_dml_affected_rows or 0)
