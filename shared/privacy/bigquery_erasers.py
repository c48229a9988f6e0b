"""BigQuery erasers (``ShopperDataStore``): one per declared table holding shopper ids.

- A table with ``shopper_id`` is erased with ``DELETE ... WHERE retailer_id = @r AND
  shopper_id = @s``. Every such table has ``retailer_id`` (the Complete Journey
  ground-truth tables included): a customer id is the retailer's own, two retailers may
  give it to two people, so an eraser refuses a table without the column.
- Partitioned tables are purged with ``DELETE ... WHERE retailer_id = @r AND
  <partition column> < @cutoff`` (partition pruning keeps it to the old partitions);
  the partition expiration set by Pulumi is the backstop at the ceiling.
- The nightly tables (features, predictions) carry a ``run_id``: the purge deletes the
  retailer's rows of runs started before the cut-off (``runs_started_before``).
- ``dead_letters`` keeps messages as base64: they are decoded here and deleted by
  ``row_id`` when they belong to the shopper (or, for the purge, to the retailer and are
  older than the cut-off).

Real BigQuery refuses DML on rows still in the streaming buffer (up to ~90 minutes after
a streaming insert); that refusal becomes ``StorePendingError``: the work is retried by
the next sweep, never skipped. The emulator allows such DML (docs: EMULATORS).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from google.api_core.exceptions import BadRequest, GoogleAPIError
from google.cloud import bigquery

from shared.platform.errors import StoreUnavailableError
from shared.platform.resource_model import BigQueryTable
from shared.privacy.service import StorePendingError

TIMEOUT_S = 120.0
STREAMING_BUFFER = "streaming buffer"


def is_streaming_buffer_refusal(exc: BaseException) -> bool:
    return isinstance(exc, BadRequest) and STREAMING_BUFFER in str(exc).lower()


class _Dml:
    def __init__(self, client: Any, project: str, table: BigQueryTable) -> None:
        self._client = client
        self._table = table
        self._ref = f"`{project}.{table.dataset}.{table.name}`"
        self._columns = {c.name for c in table.columns}

    def _run(self, sql: str, parameters: Sequence[Any]) -> int:
        try:
            job = self._client.query(
                sql,
                job_config=bigquery.QueryJobConfig(query_parameters=list(parameters)),
                timeout=TIMEOUT_S,
            )
            job.result(timeout=TIMEOUT_S)
        except BadRequest as exc:
            if is_streaming_buffer_refusal(exc):
                raise StorePendingError(f"bigquery {self._table.name}: {exc}") from exc
            raise
        except (GoogleAPIError, TimeoutError, OSError) as exc:
            raise StoreUnavailableError(f"bigquery {self._table.name}: {exc}") from exc
        return int(job.num_dml_affected_rows or 0)


def _s(name: str, value: str) -> Any:
    return bigquery.ScalarQueryParameter(name, "STRING", value)


def _t(name: str, value: datetime) -> Any:
    return bigquery.ScalarQueryParameter(name, "TIMESTAMP", value.isoformat())


class BigQueryShopperRows(_Dml):
    """A table with ``retailer_id`` and ``shopper_id`` (read models, decisions, plays,
    journey)."""

    def __init__(self, client: Any, project: str, table: BigQueryTable) -> None:
        super().__init__(client, project, table)
        missing = {"retailer_id", "shopper_id"} - self._columns
        if missing:
            raise ValueError(f"{table.name} has no {' or '.join(sorted(missing))} column")

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        return self._run(
            f"DELETE FROM {self._ref} WHERE retailer_id = @r AND shopper_id = @s",  # noqa: S608
            [_s("r", retailer_id), _s("s", shopper_id)],
        )

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        partition = self._table.partition_field
        if partition is None:
            return 0  # no time to age rows by: the table's own rules keep it
        return self._run(
            f"DELETE FROM {self._ref} WHERE retailer_id = @r AND {partition} < @cutoff",  # noqa: S608
            [_s("r", retailer_id), _t("cutoff", cutoff)],
        )


class BigQueryRunRows(BigQueryShopperRows):
    """A nightly table (``run_id``): purged by the age of the run that wrote the rows."""

    def __init__(
        self,
        client: Any,
        project: str,
        table: BigQueryTable,
        runs_started_before: Callable[[datetime], list[str]],
    ) -> None:
        super().__init__(client, project, table)
        self._runs_started_before = runs_started_before

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        runs = self._runs_started_before(cutoff)
        if not runs:
            return 0
        return self._run(
            f"DELETE FROM {self._ref} WHERE retailer_id = @r AND run_id IN "  # noqa: S608
            "(SELECT JSON_VALUE(x) FROM UNNEST(JSON_QUERY_ARRAY(@runs)) AS x)",
            [_s("r", retailer_id), _s("runs", json.dumps(runs))],
        )


def _decoded(data_base64: str) -> Any:
    try:
        text = base64.b64decode(data_base64).decode()
    except ValueError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _owners(document: Any) -> set[tuple[str | None, str]]:
    """The (retailer_id, shopper_id) pairs a decoded message mentions (any depth)."""
    found: set[tuple[str | None, str]] = set()

    def walk(node: Any, retailer: str | None) -> None:
        if isinstance(node, dict):
            retailer = node.get("retailer_id", retailer)
            shopper = node.get("shopper_id")
            if isinstance(shopper, str):
                found.add((retailer if isinstance(retailer, str) else None, shopper))
            for value in node.values():
                walk(value, retailer)
        elif isinstance(node, list):
            for value in node:
                walk(value, retailer)

    walk(document, None)
    return found


class BigQueryDeadLetters(_Dml):
    """``dead_letters``: messages kept base64-encoded, decoded to find their shopper."""

    def _rows(self, where: str, parameters: Sequence[Any]) -> list[Any]:
        sql = f"SELECT row_id, data_base64, dead_lettered_at FROM {self._ref} {where}"  # noqa: S608
        try:
            job = self._client.query(
                sql,
                job_config=bigquery.QueryJobConfig(query_parameters=list(parameters)),
                timeout=TIMEOUT_S,
            )
            return list(job.result(timeout=TIMEOUT_S))
        except (GoogleAPIError, TimeoutError, OSError) as exc:
            raise StoreUnavailableError(f"bigquery {self._table.name}: {exc}") from exc

    def _delete(self, row_ids: list[str]) -> int:
        if not row_ids:
            return 0
        return self._run(
            f"DELETE FROM {self._ref} WHERE row_id IN "  # noqa: S608
            "(SELECT JSON_VALUE(x) FROM UNNEST(JSON_QUERY_ARRAY(@ids)) AS x)",
            [_s("ids", json.dumps(row_ids))],
        )

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        quoted = json.dumps(shopper_id)
        doomed = []
        for row in self._rows("", []):
            document = _decoded(row.data_base64)
            if isinstance(document, str):
                if quoted in document:
                    doomed.append(row.row_id)
                continue
            owners = _owners(document)
            if (retailer_id, shopper_id) in owners or (None, shopper_id) in owners:
                doomed.append(row.row_id)
        return self._delete(doomed)

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        doomed = [
            row.row_id
            for row in self._rows("WHERE dead_lettered_at < @cutoff", [_t("cutoff", cutoff)])
            if any(r == retailer_id for r, _ in _owners(_decoded(row.data_base64)))
        ]
        return self._delete(doomed)
