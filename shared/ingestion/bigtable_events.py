"""Bigtable adapters of ``EventStore`` and of the rejected-events store.

Layout (docs/INGEST.md):
- ``shopper_events``: key ``{salt}#{retailer}#{shopper}#{reverse_micros}#{event_id}``,
  family ``event``, column ``message`` (the published message), cell time = occurred_at.
- ``event_ids``: key ``{retailer}#{event_id}``, family ``id``: ``row_key``, ``digest``;
  written once the event is stored and published.
- ``event_hours``: key ``{retailer}#{hour of occurred_at}#{event_id}`` (no shopper id),
  written with the event, cell time = occurred_at: the retention purge reads a
  retailer's old hours only (``shared.ingestion.event_hours``, docs/PRIVACY.md).
- ``rejected_events``: key ``{retailer}#{reverse_micros(received)}#{index}#{digest}``,
  family ``rejected``: ``raw``, ``reasons``, ``event_id``, ``received_at``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.bigtable.row_filters import CellsColumnLimitFilter
from google.cloud.bigtable_v2.types import ReadRowsRequest

from shared.ingestion.event_hours import event_hour_key, event_hour_key_of_stored
from shared.ingestion.service import (
    EventRecord,
    RejectedEvent,
    StoredId,
    record_from_message,
    reverse_micros,
)
from shared.platform.bigtable_raw import Cell, micros, mutate_rows, read_rows, table_request
from shared.platform.errors import StoreUnavailableError
from shared.system.resources import (
    EVENT_FAMILY,
    EVENT_HOUR_FAMILY,
    EVENT_HOURS_TABLE,
    EVENT_IDS_TABLE,
    ID_FAMILY,
    REJECTED_EVENTS_TABLE,
    REJECTED_FAMILY,
    SHOPPER_EVENTS_TABLE,
)

if TYPE_CHECKING:
    from google.cloud.bigtable.client import Client
    from google.cloud.bigtable.instance import Instance
    from google.cloud.bigtable.table import Table


class BigtableEventStore:
    def __init__(
        self,
        client: Client,
        instance_id: str,
        events_table: str = SHOPPER_EVENTS_TABLE,
        ids_table: str = EVENT_IDS_TABLE,
        hours_table: str = EVENT_HOURS_TABLE,
    ) -> None:
        self._api = client.table_data_client
        instance = client.instance(instance_id)
        self._events = instance.table(events_table)
        self._ids = instance.table(ids_table)
        self._hours = instance.table(hours_table)

    def lookup(self, id_keys: Sequence[str]) -> dict[str, StoredId]:
        request = table_request(ReadRowsRequest, self._ids)
        request.rows.row_keys.extend(key.encode() for key in id_keys)
        request.filter.cells_per_column_limit_filter = 1
        found: dict[str, StoredId] = {}
        try:
            for key, cells in read_rows(self._api, request):
                found[key.decode()] = StoredId(
                    row_key=cells[(ID_FAMILY, b"row_key")].decode(),
                    digest=cells[(ID_FAMILY, b"digest")].decode(),
                )
        except (GoogleAPIError, OSError) as exc:
            raise StoreUnavailableError(f"bigtable {self._ids.table_id}: {exc}") from exc
        except KeyError as exc:
            raise StoreUnavailableError(f"bigtable {self._ids.table_id}: no {exc} cell") from exc
        return found

    def write(self, records: Sequence[EventRecord]) -> None:
        mutate_rows(
            self._api,
            self._events,
            [
                (
                    r.row_key.encode(),
                    [(EVENT_FAMILY, b"message", r.message, micros(r.occurred_at))],
                )
                for r in records
            ],
        )
        # The purge's time-ordered index, after the events (an index row always finds its
        # event once the event is marked published).
        mutate_rows(
            self._api,
            self._hours,
            [
                (
                    event_hour_key(r.id_key, r.occurred_at).encode(),
                    [(EVENT_HOUR_FAMILY, b"e", b"", micros(r.occurred_at))],
                )
                for r in records
            ],
        )

    def backfill_hours(self, retailer_id: str | None, batch_size: int = 1000) -> Iterator[int]:
        """Write the ``event_hours`` row of every stored event (of one retailer, or all),
        from ``event_ids`` alone (its key and the event's row key give the index key and
        occurred_at): for events written before the index existed. One page of
        ``batch_size`` rows per ReadRows RPC, resuming after the page's last key; yields
        the rows indexed per page. Idempotent: a row written twice is the same cell."""
        prefix = f"{retailer_id}#".encode() if retailer_id else b""
        last: bytes | None = None
        while True:
            request = table_request(ReadRowsRequest, self._ids, rows_limit=batch_size)
            row_range = request.rows.row_ranges.add()
            if last is not None:
                row_range.start_key_open = last
            else:
                row_range.start_key_closed = prefix
            if prefix:
                row_range.end_key_open = prefix[:-1] + b"$"  # '$' follows '#'
            chain = request.filter.chain.filters
            chain.add().column_qualifier_regex_filter = b"row_key"
            chain.add().cells_per_column_limit_filter = 1
            rows: list[tuple[bytes, list[Cell]]] = []
            keys: list[bytes] = []
            try:
                for key, cells in read_rows(self._api, request):
                    keys.append(key)
                    row_key = cells.get((ID_FAMILY, b"row_key"))
                    if row_key is None:
                        continue
                    hour_key, occurred_at = event_hour_key_of_stored(key.decode(), row_key.decode())
                    rows.append(
                        (hour_key.encode(), [(EVENT_HOUR_FAMILY, b"e", b"", micros(occurred_at))])
                    )
            except (GoogleAPIError, OSError) as exc:
                raise StoreUnavailableError(f"bigtable {self._ids.table_id}: {exc}") from exc
            if rows:
                mutate_rows(self._api, self._hours, rows)
            yield len(rows)
            if len(keys) < batch_size:
                return
            last = keys[-1]

    def mark_published(self, records: Sequence[EventRecord]) -> None:
        mutate_rows(
            self._api,
            self._ids,
            [
                (
                    r.id_key.encode(),
                    [
                        (ID_FAMILY, b"row_key", r.row_key.encode(), -1),
                        (ID_FAMILY, b"digest", r.digest.encode(), -1),
                    ],
                )
                for r in records
            ],
        )


class BigtableRejectedEventStore:
    def __init__(
        self, client: Client, instance_id: str, table: str = REJECTED_EVENTS_TABLE
    ) -> None:
        self._api = client.table_data_client
        self._table = client.instance(instance_id).table(table)

    def record(self, rejected: Sequence[RejectedEvent]) -> None:
        rows: list[tuple[bytes, list[Cell]]] = []
        for item in rejected:
            fingerprint = hashlib.sha256(item.raw.encode()).hexdigest()[:16]
            key = (
                f"{item.retailer_id}#{reverse_micros(item.received_at)}#"
                f"{item.index:04d}#{fingerprint}"
            )
            reasons = json.dumps([r.model_dump() for r in item.reasons]).encode()
            rows.append(
                (
                    key.encode(),
                    [
                        (REJECTED_FAMILY, b"raw", item.raw.encode(), -1),
                        (REJECTED_FAMILY, b"reasons", reasons, -1),
                        (REJECTED_FAMILY, b"event_id", (item.event_id or "").encode(), -1),
                        (
                            REJECTED_FAMILY,
                            b"received_at",
                            item.received_at.isoformat().encode(),
                            -1,
                        ),
                    ],
                )
            )
        mutate_rows(self._api, self._table, rows)

    def reasons_since(self, retailer_id: str, since: datetime) -> dict[str, int]:
        """How many events of the retailer were refused since ``since``, per reason
        (``field: code``; an event refused for two reasons counts under both)."""
        from google.cloud.bigtable.row_set import RowSet

        counts: dict[str, int] = {}
        row_set = RowSet()
        row_set.add_row_range_from_keys(
            start_key=f"{retailer_id}#".encode(),
            end_key=f"{retailer_id}#{reverse_micros(since)}~".encode(),
        )
        for row in self._table.read_rows(row_set=row_set):
            for reason in json.loads(row.cells[REJECTED_FAMILY][b"reasons"][0].value):
                key = f"{reason.get('field')}: {reason.get('code')}"
                counts[key] = counts.get(key, 0) + 1
        return counts


class BigtableEventArchive:
    """Reads back what ingest stored: a retailer's events by occurrence time (replays)."""

    def __init__(self, instance: Instance, events_table: str = SHOPPER_EVENTS_TABLE) -> None:
        self._events = instance.table(events_table)

    def scan(self, retailer_id: str, since: datetime, until: datetime) -> Iterator[EventRecord]:
        import re

        from google.cloud.bigtable.row_filters import (
            RowFilterChain,
            RowKeyRegexFilter,
            TimestampRange,
            TimestampRangeFilter,
        )

        # Bigtable row-key regexes (RE2) must match the whole key.
        key = f"[0-9a-f]{{3}}#{re.escape(retailer_id)}#.*".encode()
        chain = RowFilterChain(
            filters=[
                RowKeyRegexFilter(key),
                TimestampRangeFilter(TimestampRange(start=since, end=until)),
                CellsColumnLimitFilter(1),
            ]
        )
        for row in self._events.read_rows(filter_=chain):
            cell = row.cells[EVENT_FAMILY][b"message"][0]
            yield record_from_message(row.row_key.decode(), cell.value)


def read_prefix(table: Table, prefix: str, limit: int | None = None) -> list[Any]:
    """The rows of ``table`` whose keys start with ``prefix`` (at most ``limit``), as the
    client library's row objects (inspection: ``cartwise session``)."""
    from google.cloud.bigtable.row_set import RowSet

    row_set = RowSet()
    row_set.add_row_range_with_prefix(prefix)
    return list(table.read_rows(row_set=row_set, limit=limit))
