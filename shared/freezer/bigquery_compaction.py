"""BigQuery adapter of ``SliceWarehouse``: the compaction's queries (docs/FREEZER.md).

- ``pending``: one query over every landing table, each filtered on its own slice of
  ``landed_at`` (hour partitions, clustered by ``landed_at``: it reads the slice's blocks).
- ``merge``: the slice's ``occurred_at`` bounds (a query on the slice), then one MERGE that
  inserts the slice's rows, de-duplicated on ``row_id`` (the first landed copy), whose
  ``row_id`` is not in the read model between those bounds (partition pruning). The freezer
  parks events outside the late window (``read_models.LATE_WINDOW``), so the bounds span at
  most that window and one compaction period.

Every statement has a server-side timeout (``job_timeout_ms``): the lease outlives it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud import bigquery

from shared.freezer.compaction import Pending, Slice
from shared.freezer.read_models import LANDED_AT
from shared.platform.resource_model import BigQueryTable
from shared.platform.sinks import TransientSinkError

JOB_TIMEOUT_S = 60.0


def _t(name: str, value: datetime) -> Any:
    return bigquery.ScalarQueryParameter(name, "TIMESTAMP", value.isoformat())


def merge_slice_sql(project: str, read_model: BigQueryTable, landing: BigQueryTable) -> str:
    names = list(read_model.column_names)
    # Identifiers come from the declaration; every value is a query parameter.
    return (
        f"MERGE `{project}.{read_model.dataset}.{read_model.name}` t\n"  # noqa: S608
        f"USING (SELECT {', '.join(names)}\n"
        f"       FROM `{project}.{landing.dataset}.{landing.name}`\n"
        f"       WHERE {LANDED_AT.name} > @after AND {LANDED_AT.name} <= @until\n"
        f"       QUALIFY ROW_NUMBER() OVER (PARTITION BY row_id ORDER BY {LANDED_AT.name}) = 1"
        ") s\n"
        "ON t.row_id = s.row_id AND t.occurred_at BETWEEN @low AND @high\n"
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)})\n"
        f"VALUES ({', '.join('s.' + n for n in names)})"
    )


class BigQuerySlices:
    def __init__(
        self,
        client: Any,
        project: str,
        read_models: dict[str, BigQueryTable],
        landings: dict[str, BigQueryTable],
        job_timeout_s: float = JOB_TIMEOUT_S,
    ) -> None:
        self._client = client
        self._project = project
        self._landings = landings
        self._timeout_s = job_timeout_s
        self._merge = {n: merge_slice_sql(project, t, landings[n]) for n, t in read_models.items()}

    def _ref(self, table: str) -> str:
        landing = self._landings[table]
        return f"`{self._project}.{landing.dataset}.{landing.name}`"

    def _query(self, sql: str, parameters: list[Any]) -> Any:
        config = bigquery.QueryJobConfig(
            query_parameters=parameters, job_timeout_ms=int(self._timeout_s * 1000)
        )
        try:
            job = self._client.query(sql, job_config=config, timeout=self._timeout_s)
            job.result(timeout=self._timeout_s)
        except (GoogleAPIError, TimeoutError, OSError) as exc:
            raise TransientSinkError(f"compaction: {exc}") from exc
        return job

    def pending(self, after: dict[str, datetime], until: datetime) -> dict[str, Pending]:
        if not after:
            return {}
        names = sorted(after)
        sql = " UNION ALL ".join(
            f"SELECT '{name}' AS t, COUNT(*) AS n, MIN({LANDED_AT.name}) AS first "  # noqa: S608
            f"FROM {self._ref(name)} "
            f"WHERE {LANDED_AT.name} > @after_{i} AND {LANDED_AT.name} <= @until"
            for i, name in enumerate(names)
        )
        parameters = [
            _t("until", until),
            *(_t(f"after_{i}", after[n]) for i, n in enumerate(names)),
        ]
        rows = self._query(sql, parameters).result(timeout=self._timeout_s)
        return {r.t: Pending(rows=int(r.n), first_landed_at=r.first) for r in rows}

    def merge(self, piece: Slice) -> int:
        window = [_t("after", piece.after), _t("until", piece.until)]
        bounds = list(
            self._query(
                f"SELECT MIN(occurred_at) AS low, MAX(occurred_at) AS high "  # noqa: S608
                f"FROM {self._ref(piece.table)} "
                f"WHERE {LANDED_AT.name} > @after AND {LANDED_AT.name} <= @until",
                window,
            ).result(timeout=self._timeout_s)
        )
        if not bounds or bounds[0].low is None:
            return 0
        job = self._query(
            self._merge[piece.table],
            [*window, _t("low", bounds[0].low), _t("high", bounds[0].high)],
        )
        return int(job.num_dml_affected_rows or 0)
