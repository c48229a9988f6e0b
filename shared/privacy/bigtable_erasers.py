"""Bigtable erasers (``ShopperDataStore``) of the tables that hold shopper data.

Key layouts (docs/INGEST.md, docs/DECISIONS.md):
- ``shopper_events``: ``{salt}#{retailer}#{shopper}#{reverse_micros}#{event_id}``, cell
  time = occurred_at; its index ``event_ids``: ``{retailer}#{event_id}`` (value: the
  event's row key). One eraser deletes both, index rows first (a retry after a crash
  still finds the events, hence their index rows).
- ``shopper_state``: ``{salt}#{retailer}#{shopper}#``; cell time = last write.
- ``experience_trees``: ``{retailer}#{shopper}`` (personal), ``{retailer}#`` (default).
- ``rejected_events``: ``{retailer}#{reverse_micros}#...``; ``raw`` holds the refused
  input, which may carry a shopper id.
- ``event_hours`` (the purge's index of ``shopper_events``, no shopper id):
  ``{retailer}#{YYYYMMDDHH}#{event_id}``, cell time = occurred_at.

Deletes go in MutateRows batches of ``batch_size`` rows; scans read keys only
(values stripped) unless the value is needed. The purge (``purge_before``) reads key
ranges, never the whole table, in pages of ``batch_size`` rows, and gets back only the
rows it deletes: ``shopper_events`` through ``event_hours``, ``rejected_events`` by its
time-ordered keys, hot state by a server-side condition on cell time (docs/PRIVACY.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.bigtable_v2.types import MutateRowsRequest, MutateRowsResponse, ReadRowsRequest

from shared.ingestion.event_hours import id_key_of, older_range
from shared.ingestion.service import reverse_micros, shopper_prefix
from shared.platform.bigtable_raw import TIMEOUT_S, micros, read_rows, table_request
from shared.platform.errors import StoreUnavailableError
from shared.system.resources import (
    EVENT_HOURS_TABLE,
    EVENT_IDS_TABLE,
    EXPERIENCE_TREES_TABLE,
    ID_FAMILY,
    REJECTED_EVENTS_TABLE,
    REJECTED_FAMILY,
    SHOPPER_EVENTS_TABLE,
    SHOPPER_STATE_TABLE,
)

if TYPE_CHECKING:
    from google.cloud.bigtable.client import Client

BATCH_SIZE = 1000


SALTS = 16**3  # the salt of shopper-prefixed keys: three hex digits (shopper_prefix)


@dataclass(frozen=True)
class KeyRange:
    """``[start, end)``, or ``(start, end)`` when ``start_open``."""

    start: bytes
    end: bytes
    start_open: bool = False


def _keys_only(row_filter: Any) -> None:
    chain = row_filter.chain.filters
    chain.add().cells_per_column_limit_filter = 1
    chain.add().strip_value_transformer = True


def _only_rows_older_than(row_filter: Any, cutoff: datetime) -> None:
    """A row comes back (its key only) if none of its cells is at or after ``cutoff``: a
    condition filter, evaluated by Bigtable, so kept rows never leave the server."""
    condition = row_filter.condition
    condition.predicate_filter.timestamp_range_filter.start_timestamp_micros = micros(cutoff)
    condition.true_filter.block_all_filter = True
    _keys_only(condition.false_filter)


def _prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


class _Table:
    def __init__(self, client: Client, instance_id: str, table: str, batch_size: int) -> None:
        self._api = client.table_data_client
        self._table = client.instance(instance_id).table(table)
        self._batch_size = batch_size
        self._rows_read = 0

    @property
    def name(self) -> str:
        return str(self._table.table_id)

    def _request(self) -> Any:
        return table_request(ReadRowsRequest, self._table)

    def _keys(self, request: Any) -> Iterator[bytes]:
        """Row keys of a request (values stripped)."""
        chain = request.filter.chain.filters
        chain.add().cells_per_column_limit_filter = 1
        chain.add().strip_value_transformer = True
        for key, _ in self._read(request):
            yield key

    def rows_read(self) -> int:
        """Rows this adapter has read so far (what came back from Bigtable)."""
        return self._rows_read

    def _pages(
        self, ranges: Sequence[KeyRange], only: Callable[[Any], None]
    ) -> Iterator[list[bytes]]:
        """The keys of the rows in ``ranges`` that the filter ``only`` lets through, one
        page of ``batch_size`` rows per ReadRows RPC (each RPC bounded in time), resuming
        after the last key of the page before: what a page deleted is never read again."""
        last: bytes | None = None
        while True:
            request = self._request()
            for key_range in ranges:
                if last is not None and key_range.end <= last:
                    continue
                row_range = request.rows.row_ranges.add()
                if last is not None and key_range.start <= last:
                    row_range.start_key_open = last
                elif key_range.start_open:
                    row_range.start_key_open = key_range.start
                else:
                    row_range.start_key_closed = key_range.start
                row_range.end_key_open = key_range.end
            if not request.rows.row_ranges:
                return
            request.rows_limit = self._batch_size
            only(request.filter)
            keys = [key for key, _ in self._read(request)]
            if keys:
                yield keys
            if len(keys) < self._batch_size:
                return
            last = keys[-1]

    def _read(self, request: Any) -> Iterator[tuple[bytes, dict[tuple[str, bytes], bytes]]]:
        try:
            for row in read_rows(self._api, request):
                self._rows_read += 1
                yield row
        except (GoogleAPIError, OSError) as exc:
            raise StoreUnavailableError(f"bigtable {self.name}: {exc}") from exc

    def _delete(self, keys: list[bytes]) -> int:
        """Delete whole rows, ``batch_size`` per MutateRows RPC."""
        for start in range(0, len(keys), self._batch_size):
            batch = keys[start : start + self._batch_size]
            request = table_request(MutateRowsRequest, self._table)
            for key in batch:
                entry = request.entries.add()
                entry.row_key = key
                entry.mutations.add().delete_from_row.SetInParent()
            failed: list[str] = []
            try:
                for response in self._api.mutate_rows(
                    request=MutateRowsRequest.wrap(request), timeout=TIMEOUT_S
                ):
                    entries = MutateRowsResponse.pb(response).entries
                    failed += [e.status.message for e in entries if e.status.code != 0]
            except (GoogleAPIError, OSError) as exc:
                raise StoreUnavailableError(f"bigtable {self.name}: {exc}") from exc
            if failed:
                raise StoreUnavailableError(f"bigtable {self.name}: {failed[0]}")
        return len(keys)

    def _delete_scanned(self, keys: Iterator[bytes]) -> int:
        """Delete what a scan finds, in bounded batches (never the whole scan in memory)."""
        deleted = 0
        batch: list[bytes] = []
        for key in keys:
            batch.append(key)
            if len(batch) >= self._batch_size:
                deleted += self._delete(batch)
                batch = []
        return deleted + self._delete(batch)

    def _purge_pages(self, ranges: Sequence[KeyRange], cutoff: datetime) -> int:
        """Delete the rows of ``ranges`` whose newest cell is older than ``cutoff``."""
        deleted = 0
        for keys in self._pages(ranges, lambda f: _only_rows_older_than(f, cutoff)):
            deleted += self._delete(keys)
        return deleted


class BigtableShopperEvents(_Table):
    """``shopper_events`` and its index ``event_ids`` (raw events)."""

    def __init__(
        self,
        client: Client,
        instance_id: str,
        events_table: str = SHOPPER_EVENTS_TABLE,
        ids_table: str = EVENT_IDS_TABLE,
        hours_table: str = EVENT_HOURS_TABLE,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        super().__init__(client, instance_id, events_table, batch_size)
        self._ids = _Table(client, instance_id, ids_table, batch_size)
        self._hours = _Table(client, instance_id, hours_table, batch_size)

    def _delete_events(self, retailer_id: str, keys: Iterator[bytes]) -> int:
        deleted = 0
        batch: list[bytes] = []

        def flush() -> int:
            # The event id is the key's last segment; index rows go first.
            self._ids._delete([f"{retailer_id}#".encode() + k.rsplit(b"#", 1)[1] for k in batch])
            return self._delete(batch)

        for key in keys:
            batch.append(key)
            if len(batch) >= self._batch_size:
                deleted += flush()
                batch = []
        return deleted + flush()

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        prefix = shopper_prefix(retailer_id, shopper_id).encode()
        request = self._request()
        row_range = request.rows.row_ranges.add()
        row_range.start_key_closed = prefix
        row_range.end_key_open = _prefix_end(prefix)
        return self._delete_events(retailer_id, self._keys(request))

    def rows_read(self) -> int:
        return self._rows_read + self._ids.rows_read() + self._hours.rows_read()

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        """Through the time-ordered index ``event_hours``: the retailer's hours before the
        cut-off's, and that hour's cells older than it (cell time = occurred_at), then
        each event's ``event_ids`` row (its row key), then the event. Reads what it
        deletes and no more (docs/PRIVACY.md); an index row whose ``event_ids`` row is
        gone (the event was erased) is deleted alone."""
        start, end = older_range(retailer_id, cutoff)
        ranges = [KeyRange(start.encode(), end.encode())]

        def older(row_filter: Any) -> None:
            chain = row_filter.chain.filters
            chain.add().timestamp_range_filter.end_timestamp_micros = micros(cutoff)
            chain.add().cells_per_column_limit_filter = 1
            chain.add().strip_value_transformer = True

        deleted = 0
        for hour_keys in self._hours._pages(ranges, older):
            request = self._ids._request()
            request.rows.row_keys.extend(id_key_of(k.decode()).encode() for k in hour_keys)
            chain = request.filter.chain.filters
            chain.add().cells_per_column_limit_filter = 1
            chain.add().column_qualifier_regex_filter = b"row_key"
            found = {key: cells[(ID_FAMILY, b"row_key")] for key, cells in self._ids._read(request)}
            # The events first: a retry after a crash still finds them through the index.
            deleted += self._delete(list(found.values()))
            self._ids._delete(list(found))
            self._hours._delete(hour_keys)
        return deleted


class BigtableShopperStates(_Table):
    """``shopper_state``: one row per shopper (hot state), written at each decision."""

    def __init__(
        self,
        client: Client,
        instance_id: str,
        table: str = SHOPPER_STATE_TABLE,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        super().__init__(client, instance_id, table, batch_size)

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        request = self._request()
        request.rows.row_keys.append(shopper_prefix(retailer_id, shopper_id).encode())
        return self._delete_scanned(self._keys(request))

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        # One row per shopper: the retailer's rows under each of the 4,096 salts, in one
        # pass; Bigtable sends only rows with no cell at or after the cut-off.
        ranges = [
            KeyRange(p, _prefix_end(p))
            for p in (f"{salt:03x}#{retailer_id}#".encode() for salt in range(SALTS))
        ]
        return self._purge_pages(ranges, cutoff)


class BigtablePersonalTrees(_Table):
    """``experience_trees``: the personal trees (the retailer's default tree is kept)."""

    def __init__(
        self,
        client: Client,
        instance_id: str,
        table: str = EXPERIENCE_TREES_TABLE,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        super().__init__(client, instance_id, table, batch_size)

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        request = self._request()
        request.rows.row_keys.append(f"{retailer_id}#{shopper_id}".encode())
        return self._delete_scanned(self._keys(request))

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        # A personal tree's key has a shopper after the '#'; the default tree (the key
        # ``{retailer}#`` itself) is left out by an open start.
        prefix = f"{retailer_id}#".encode()
        return self._purge_pages([KeyRange(prefix, _prefix_end(prefix), True)], cutoff)


class BigtableRejectedEvents(_Table):
    """``rejected_events``: refused input, kept for the retailer's debugging (raw events)."""

    def __init__(
        self,
        client: Client,
        instance_id: str,
        table: str = REJECTED_EVENTS_TABLE,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        super().__init__(client, instance_id, table, batch_size)

    def _matching(self, retailer_id: str, shopper_id: str) -> Iterator[bytes]:
        request = self._request()
        row_range = request.rows.row_ranges.add()
        prefix = f"{retailer_id}#".encode()
        row_range.start_key_closed = prefix
        row_range.end_key_open = _prefix_end(prefix)
        chain = request.filter.chain.filters
        chain.add().cells_per_column_limit_filter = 1
        chain.add().column_qualifier_regex_filter = b"raw"
        quoted = json.dumps(shopper_id)
        for key, cells in self._read(request):
            raw = cells.get((REJECTED_FAMILY, b"raw"), b"").decode(errors="replace")
            if _mentions_shopper(raw, shopper_id, quoted):
                yield key

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        return self._delete_scanned(self._matching(retailer_id, shopper_id))

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        # Keys are newest first (``{retailer}#{reverse_micros(received)}#...``): what was
        # received before the cut-off is the range after the cut-off's own key.
        prefix = f"{retailer_id}#".encode()
        start = f"{retailer_id}#{reverse_micros(cutoff)}$".encode()  # '$' follows '#'
        ranges = [KeyRange(start, _prefix_end(prefix))]
        deleted = 0
        for keys in self._pages(ranges, _keys_only):
            deleted += self._delete(keys)
        return deleted


def _mentions_shopper(raw: str, shopper_id: str, quoted: str) -> bool:
    """A refused input is the shopper's if its ``shopper_id`` is theirs; input that is not
    an object (or was truncated) counts as theirs if it holds the quoted id anywhere."""
    try:
        document = json.loads(raw)
    except ValueError:
        return quoted in raw
    if isinstance(document, dict):
        return document.get("shopper_id") == shopper_id or (
            "shopper_id" not in document and quoted in raw
        )
    return quoted in raw
