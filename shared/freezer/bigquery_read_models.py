"""BigQuery adapter of ``ReadModelSink``: an idempotent MERGE on ``row_id`` per batch.

The batch travels as one JSON-array query parameter; the MERGE inserts only the rows
whose ``row_id`` is not in the table yet, looking only at the partitions the batch
touches. It works alike on BigQuery and on bqemulator (which ignores insertId), needs no
streaming buffer, and a redelivered batch inserts nothing.

Pub/Sub's redelivery is the retry of a batch BigQuery could not take. The client's own
retries are bounded well inside the subscription's ack deadline (60 s): its defaults retry
an unavailable BigQuery for 10 minutes (``DEFAULT_RETRY``) and re-run a failed job for 20
(``DEFAULT_JOB_RETRY``), so a worker would still hold a batch long after Pub/Sub had
handed it to another, and the quarantine after the declared attempts would take hours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud import bigquery

from shared.freezer.read_models import Row
from shared.platform.batching import chunked
from shared.platform.resource_model import BigQueryTable, Column
from shared.platform.sinks import TransientSinkError

MAX_ROWS_PER_MERGE = 2000
MAX_BYTES_PER_MERGE = 2 * 1024 * 1024
TIMEOUT_S = 60.0
RETRY_S = 10.0  # transient HTTP errors retried this long, then the batch is redelivered


def _extract(column: Column) -> str:
    value = f"JSON_VALUE(r, '$.{column.name}')"
    if column.type == "STRING":
        return f"{value} AS {column.name}"
    return f"CAST({value} AS {column.type}) AS {column.name}"


def merge_sql(project: str, table: BigQueryTable) -> str:
    names = [c.name for c in table.columns]
    partition = table.partition_field
    pruning = f" AND t.{partition} BETWEEN @low AND @high" if partition else ""
    # Identifiers come from the declaration; every value is a query parameter.
    return (
        f"MERGE `{project}.{table.dataset}.{table.name}` t\n"  # noqa: S608
        f"USING (SELECT {', '.join(_extract(c) for c in table.columns)}\n"
        f"       FROM UNNEST(JSON_QUERY_ARRAY(@rows)) AS r) s\n"
        f"ON t.row_id = s.row_id{pruning}\n"
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)})\n"
        f"VALUES ({', '.join('s.' + n for n in names)})"
    )


class BigQueryReadModelSink:
    def __init__(
        self,
        client: Any,
        project: str,
        tables: Sequence[BigQueryTable],
        retry_s: float = RETRY_S,
    ) -> None:
        self._client = client
        self._retry = bigquery.DEFAULT_RETRY.with_deadline(retry_s)
        self._tables = {t.name: t for t in tables}
        self._sql = {t.name: merge_sql(project, t) for t in tables}

    def write(self, table: str, rows: Sequence[Row]) -> int:
        declared = self._tables[table]
        inserted = 0
        for chunk in chunked(
            rows, MAX_ROWS_PER_MERGE, MAX_BYTES_PER_MERGE, lambda r: len(json.dumps(r, default=str))
        ):
            parameters = [bigquery.ScalarQueryParameter("rows", "STRING", json.dumps(chunk))]
            if declared.partition_field:
                moments = sorted(str(r[declared.partition_field]) for r in chunk)
                parameters += [
                    bigquery.ScalarQueryParameter("low", "TIMESTAMP", moments[0]),
                    bigquery.ScalarQueryParameter("high", "TIMESTAMP", moments[-1]),
                ]
            try:
                job = self._client.query(
                    self._sql[table],
                    job_config=bigquery.QueryJobConfig(query_parameters=parameters),
                    retry=self._retry,
                    job_retry=None,
                    timeout=TIMEOUT_S,
                )
                job.result(retry=self._retry, timeout=TIMEOUT_S)
            except (GoogleAPIError, TimeoutError, OSError) as exc:
                raise TransientSinkError(f"bigquery {table}: {exc}") from exc
            inserted += int(job.num_dml_affected_rows or 0)
        return inserted


def count_rows(
    client: Any, project: str, tables: Sequence[BigQueryTable], column: str, value: str
) -> dict[str, int]:
    """Rows per table whose ``column`` equals ``value``, in one query (demo, benchmarks)."""
    sql = " UNION ALL ".join(
        f"SELECT '{t.name}' AS t, COUNT(*) AS n FROM `{project}.{t.dataset}.{t.name}` "  # noqa: S608
        f"WHERE {column} = @value"
        for t in tables
    )
    config = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("value", "STRING", value)]
    )
    return {r.t: r.n for r in client.query(sql, job_config=config).result(timeout=TIMEOUT_S)}


def migrate_row_ids(client: Any, project: str, tables: Sequence[BigQueryTable]) -> dict[str, int]:
    """Rows frozen before ``row_id`` carried the retailer get it (issue 20): one UPDATE per
    read model, touching only rows without the prefix, so a second run changes nothing.
    Run it before the new freezer's first compaction (docs/FREEZER.md, "Migration")."""
    migrated = {}
    for table in tables:
        job = client.query(
            f"UPDATE `{project}.{table.dataset}.{table.name}` "  # noqa: S608
            "SET row_id = CONCAT(retailer_id, '/', row_id) "
            "WHERE NOT STARTS_WITH(row_id, CONCAT(retailer_id, '/'))",
            timeout=TIMEOUT_S,
        )
        job.result(timeout=600)
        migrated[table.name] = int(job.num_dml_affected_rows or 0)
    return migrated
