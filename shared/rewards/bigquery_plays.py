"""BigQuery adapter of the plays export: one MERGE on ``play_id`` per batch.

New plays are inserted; a known play's ``voided``, ``voided_at`` and ``paid`` move
forward only (OR, COALESCE), so a redelivered or late older state changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud import bigquery

from shared.platform.resource_model import BigQueryTable
from shared.platform.sinks import TransientSinkError
from shared.rewards.read_models import PLAYS

TIMEOUT_S = 60.0
MAX_ROWS_PER_MERGE = 2000


def plays_merge_sql(project: str, table: BigQueryTable = PLAYS) -> str:
    names = [c.name for c in table.columns]

    def extract(name: str, kind: str) -> str:
        value = f"JSON_VALUE(r, '$.{name}')"
        return f"{value} AS {name}" if kind == "STRING" else f"CAST({value} AS {kind}) AS {name}"

    columns = ", ".join(extract(c.name, c.type) for c in table.columns)
    # Identifiers come from the declaration; every value is a query parameter.
    return (
        f"MERGE `{project}.{table.dataset}.{table.name}` t\n"  # noqa: S608
        f"USING (SELECT {columns} FROM UNNEST(JSON_QUERY_ARRAY(@rows)) AS r) s\n"
        f"ON t.play_id = s.play_id AND t.played_at BETWEEN @low AND @high\n"
        f"WHEN MATCHED THEN UPDATE SET voided = (t.voided OR s.voided),\n"
        f"  voided_at = COALESCE(t.voided_at, s.voided_at), paid = (t.paid OR s.paid)\n"
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)})\n"
        f"VALUES ({', '.join('s.' + n for n in names)})"
    )


class BigQueryPlaySink:
    def __init__(self, client: Any, project: str) -> None:
        self._client = client
        self._sql = plays_merge_sql(project)

    def write(self, rows: Sequence[dict[str, Any]]) -> int:
        """Upsert the rows (one per play_id); how many rows were inserted or updated."""
        affected = 0
        for start in range(0, len(rows), MAX_ROWS_PER_MERGE):
            chunk = list(rows[start : start + MAX_ROWS_PER_MERGE])
            moments = sorted(str(r["played_at"]) for r in chunk)
            parameters = [
                bigquery.ScalarQueryParameter("rows", "STRING", json.dumps(chunk)),
                bigquery.ScalarQueryParameter("low", "TIMESTAMP", moments[0]),
                bigquery.ScalarQueryParameter("high", "TIMESTAMP", moments[-1]),
            ]
            try:
                job = self._client.query(
                    self._sql,
                    job_config=bigquery.QueryJobConfig(query_parameters=parameters),
                    timeout=TIMEOUT_S,
                )
                job.result(timeout=TIMEOUT_S)
            except (GoogleAPIError, TimeoutError, OSError) as exc:
                raise TransientSinkError(f"bigquery plays: {exc}") from exc
            affected += int(job.num_dml_affected_rows or 0)
        return affected
