"""Bigtable adapters of ``EventStore`` and of the rejected-events store.

Layout (docs/INGEST.md):
- ``shopper_events``: key ``{salt}#{retailer}#{shopper}#{reverse_micros}#{event_id}``,
  family ``event``, column ``message`` (the published message), cell time = occurred_at.
- ``event_ids``: key ``{retailer}#{event_id}``, family ``id``: ``row_key``, ``digest``,
  ``published`` (``0``/``1``).
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
from google.cloud.bigtable.row_set import RowSet

from shared.ingest import (
    EventRecord,
    RejectedEvent,
    StoredId,
    StoreUnavailableError,
    record_from_message,
    reverse_micros,
)
from shared.resources import (
    EVENT_FAMILY,
    EVENT_IDS_TABLE,
    ID_FAMILY,
    REJECTED_EVENTS_TABLE,
    REJECTED_FAMILY,
    SHOPPER_EVENTS_TABLE,
)

if TYPE_CHECKING:
    from google.cloud.bigtable.instance import Instance
    from google.cloud.bigtable.table import Table

TIMEOUT_S = 10.0


def _mutate(table: Table, rows: list[Any]) -> None:
    try:
        statuses = table.mutate_rows(rows, timeout=TIMEOUT_S)
    except (GoogleAPIError, OSError) as exc:
        raise StoreUnavailableError(f"bigtable {table.table_id}: {exc}") from exc
    failed = [s for s in statuses if s.code != 0]
    if failed:
        raise StoreUnavailableError(
            f"bigtable {table.table_id}: {len(failed)} rows failed ({failed[0].message})"
        )


class BigtableEventStore:
    def __init__(
        self,
        instance: Instance,
        events_table: str = SHOPPER_EVENTS_TABLE,
        ids_table: str = EVENT_IDS_TABLE,
    ) -> None:
        self._events = instance.table(events_table)
        self._ids = instance.table(ids_table)

    def lookup(self, id_keys: Sequence[str]) -> dict[str, StoredId]:
        row_set = RowSet()
        for key in id_keys:
            row_set.add_row_key(key.encode())
        found: dict[str, StoredId] = {}
        try:
            for row in self._ids.read_rows(
                row_set=row_set, filter_=CellsColumnLimitFilter(1), retry=None
            ):
                cells = row.cells[ID_FAMILY]
                found[row.row_key.decode()] = StoredId(
                    row_key=cells[b"row_key"][0].value.decode(),
                    digest=cells[b"digest"][0].value.decode(),
                    published=cells[b"published"][0].value == b"1",
                )
        except (GoogleAPIError, OSError) as exc:
            raise StoreUnavailableError(f"bigtable {self._ids.table_id}: {exc}") from exc
        return found

    def write(self, records: Sequence[EventRecord]) -> None:
        events, ids = [], []
        for record in records:
            event_row = self._events.direct_row(record.row_key.encode())
            event_row.set_cell(
                EVENT_FAMILY, b"message", record.message, timestamp=record.occurred_at
            )
            events.append(event_row)
            id_row = self._ids.direct_row(record.id_key.encode())
            id_row.set_cell(ID_FAMILY, b"row_key", record.row_key.encode())
            id_row.set_cell(ID_FAMILY, b"digest", record.digest.encode())
            id_row.set_cell(ID_FAMILY, b"published", b"0")
            ids.append(id_row)
        _mutate(self._events, events)
        _mutate(self._ids, ids)

    def mark_published(self, records: Sequence[EventRecord]) -> None:
        rows = []
        for record in records:
            row = self._ids.direct_row(record.id_key.encode())
            row.set_cell(ID_FAMILY, b"published", b"1")
            rows.append(row)
        _mutate(self._ids, rows)


class BigtableRejectedEventStore:
    def __init__(self, instance: Instance, table: str = REJECTED_EVENTS_TABLE) -> None:
        self._table = instance.table(table)

    def record(self, rejected: Sequence[RejectedEvent]) -> None:
        rows = []
        for item in rejected:
            fingerprint = hashlib.sha256(item.raw.encode()).hexdigest()[:16]
            key = (
                f"{item.retailer_id}#{reverse_micros(item.received_at)}#"
                f"{item.index:04d}#{fingerprint}"
            )
            row = self._table.direct_row(key.encode())
            row.set_cell(REJECTED_FAMILY, b"raw", item.raw.encode())
            row.set_cell(
                REJECTED_FAMILY,
                b"reasons",
                json.dumps([r.model_dump() for r in item.reasons]).encode(),
            )
            row.set_cell(REJECTED_FAMILY, b"event_id", (item.event_id or "").encode())
            row.set_cell(REJECTED_FAMILY, b"received_at", item.received_at.isoformat().encode())
            rows.append(row)
        _mutate(self._table, rows)


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
