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

Deletes go in MutateRows batches of ``batch_size`` rows; scans read keys only
(values stripped) unless the value is needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.bigtable_v2.types import MutateRowsRequest, MutateRowsResponse, ReadRowsRequest

from shared.ingestion.service import shopper_prefix
from shared.platform.bigtable_raw import TIMEOUT_S, micros, read_rows
from shared.platform.errors import StoreUnavailableError
from shared.system.resources import (
    EVENT_IDS_TABLE,
    EXPERIENCE_TREES_TABLE,
    REJECTED_EVENTS_TABLE,
    REJECTED_FAMILY,
    SHOPPER_EVENTS_TABLE,
    SHOPPER_STATE_TABLE,
)

if TYPE_CHECKING:
    from google.cloud.bigtable.client import Client

BATCH_SIZE = 1000


def _prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


class _Table:
    def __init__(self, client: Client, instance_id: str, table: str, batch_size: int) -> None:
        self._api = client.table_data_client
        self._table = client.instance(instance_id).table(table)
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        return str(self._table.table_id)

    def _request(self) -> Any:
        return ReadRowsRequest.pb()(table_name=self._table.name)

    def _keys(self, request: Any, *, latest_before: datetime | None = None) -> Iterator[bytes]:
        """Row keys of a request (values stripped); with ``latest_before``, only rows
        whose newest cell is older than it (no cell at or after it)."""
        chain = request.filter.chain.filters
        chain.add().cells_per_column_limit_filter = 1
        chain.add().strip_value_transformer = True
        if latest_before is None:
            for key, _ in self._read(request):
                yield key
            return
        # Rows with a cell at or after the cut-off are kept: find them, then the rest.
        recent = self._request()
        recent.CopyFrom(request)
        timestamps = recent.filter.chain.filters.add().timestamp_range_filter
        timestamps.start_timestamp_micros = micros(latest_before)
        keep = {key for key, _ in self._read(recent)}
        for key, _ in self._read(request):
            if key not in keep:
                yield key

    def _read(self, request: Any) -> Iterator[tuple[bytes, dict[tuple[str, bytes], bytes]]]:
        try:
            yield from read_rows(self._api, request)
        except (GoogleAPIError, OSError) as exc:
            raise StoreUnavailableError(f"bigtable {self.name}: {exc}") from exc

    def _delete(self, keys: list[bytes]) -> int:
        """Delete whole rows, ``batch_size`` per MutateRows RPC."""
        for start in range(0, len(keys), self._batch_size):
            batch = keys[start : start + self._batch_size]
            request = MutateRowsRequest.pb()(table_name=self._table.name)
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

    def _retailer_regex(self, retailer_id: str, salted: bool) -> bytes:
        salt = "[0-9a-f]{3}#" if salted else ""
        return f"{salt}{re.escape(retailer_id)}#.*".encode()


class BigtableShopperEvents(_Table):
    """``shopper_events`` and its index ``event_ids`` (raw events)."""

    def __init__(
        self,
        client: Client,
        instance_id: str,
        events_table: str = SHOPPER_EVENTS_TABLE,
        ids_table: str = EVENT_IDS_TABLE,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        super().__init__(client, instance_id, events_table, batch_size)
        self._ids = _Table(client, instance_id, ids_table, batch_size)

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

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        # Cell time is occurred_at: rows with no cell at or after the cut-off go.
        request = self._request()
        request.filter.chain.filters.add().row_key_regex_filter = self._retailer_regex(
            retailer_id, salted=True
        )
        return self._delete_events(retailer_id, self._keys(request, latest_before=cutoff))


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
        request = self._request()
        request.filter.chain.filters.add().row_key_regex_filter = self._retailer_regex(
            retailer_id, salted=True
        )
        return self._delete_scanned(self._keys(request, latest_before=cutoff))


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
        request = self._request()
        # A personal tree's key has a shopper after the '#'; the default tree has none.
        request.filter.chain.filters.add().row_key_regex_filter = (
            f"{re.escape(retailer_id)}#.+".encode()
        )
        return self._delete_scanned(self._keys(request, latest_before=cutoff))


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
        request = self._request()
        row_range = request.rows.row_ranges.add()
        prefix = f"{retailer_id}#".encode()
        row_range.start_key_closed = prefix
        row_range.end_key_open = _prefix_end(prefix)
        return self._delete_scanned(self._keys(request, latest_before=cutoff))


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
