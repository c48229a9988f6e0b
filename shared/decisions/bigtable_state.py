"""Bigtable adapters of the decision service: shoppers' live state and experience trees.

- ``shopper_state``: key ``{salt}#{retailer}#{shopper}#`` (the shopper prefix of
  ``shopper_events``), family ``s``: ``state`` (the ``ShopperState`` JSON) and
  ``experiences`` (the ``CurrentExperiences`` JSON the experiences endpoint answers).
- ``experience_trees``: key ``{retailer}#{shopper}`` for a personal tree and
  ``{retailer}#`` for the retailer's default tree, family ``t``: ``tree``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.bigtable_v2.types import ReadRowsRequest

from shared.decisions.service import CurrentExperiences, ShopperKey, StateUpdate
from shared.decisions.trees import ExperienceTree, ShopperState
from shared.ingestion.service import shopper_prefix
from shared.platform.bigtable_raw import Cell, micros, mutate_rows, read_rows, table_request
from shared.platform.errors import StoreUnavailableError
from shared.platform.ttl_cache import TtlCache
from shared.system.resources import (
    EXPERIENCE_TREES_TABLE,
    HOT_STATE_RETENTION_DAYS,
    SHOPPER_STATE_TABLE,
    STATE_FAMILY,
    TREE_FAMILY,
)

# Hot state past its family's GC ceiling is never read, even before GC removes it
# (Bigtable GC is asynchronous: expired cells stay readable for up to a week).
HOT_STATE_MAX_AGE = timedelta(days=HOT_STATE_RETENTION_DAYS)

if TYPE_CHECKING:
    from google.cloud.bigtable.client import Client


def _read(
    api: Any,
    table: Any,
    keys: Sequence[bytes],
    column: bytes | None = None,
    max_age: timedelta | None = None,
) -> dict[bytes, dict[tuple[str, bytes], bytes]]:
    """The latest cells of these rows (of one column only, when given; none older than
    ``max_age``, when given: what GC has not yet removed past a family's ceiling)."""
    request = table_request(ReadRowsRequest, table)
    request.rows.row_keys.extend(keys)
    if column is None and max_age is None:
        request.filter.cells_per_column_limit_filter = 1  # a chain needs two filters
    else:
        chain = request.filter.chain.filters
        if column is not None:
            chain.add().column_qualifier_regex_filter = re.escape(column)
        if max_age is not None:
            oldest = micros(datetime.now(UTC) - max_age)
            chain.add().timestamp_range_filter.start_timestamp_micros = oldest - oldest % 1000
        chain.add().cells_per_column_limit_filter = 1
    try:
        return dict(read_rows(api, request))
    except (GoogleAPIError, OSError) as exc:
        raise StoreUnavailableError(f"bigtable {table.table_id}: {exc}") from exc


def state_key(retailer_id: str, shopper_id: str) -> bytes:
    return shopper_prefix(retailer_id, shopper_id).encode()


class BigtableShopperStates:
    def __init__(self, client: Client, instance_id: str, table: str = SHOPPER_STATE_TABLE) -> None:
        self._api = client.table_data_client
        self._table = client.instance(instance_id).table(table)

    def read(self, keys: Sequence[ShopperKey]) -> dict[ShopperKey, ShopperState]:
        wanted = {state_key(r, s): (r, s) for r, s in keys}
        rows = _read(self._api, self._table, list(wanted), b"state", HOT_STATE_MAX_AGE)
        return {
            wanted[key]: ShopperState.model_validate_json(cells[(STATE_FAMILY, b"state")])
            for key, cells in rows.items()
            if (STATE_FAMILY, b"state") in cells
        }

    def write(self, updates: Sequence[StateUpdate]) -> None:
        rows: list[tuple[bytes, list[Cell]]] = []
        for update in updates:
            cells: list[Cell] = [
                (STATE_FAMILY, b"state", update.state.model_dump_json().encode(), -1)
            ]
            if update.current is not None:
                cells.append(
                    (STATE_FAMILY, b"experiences", update.current.model_dump_json().encode(), -1)
                )
            rows.append((state_key(update.retailer_id, update.shopper_id), cells))
        if rows:
            mutate_rows(self._api, self._table, rows)

    def current(self, retailer_id: str, shopper_id: str) -> CurrentExperiences | None:
        key = state_key(retailer_id, shopper_id)
        rows = _read(self._api, self._table, [key], b"experiences", HOT_STATE_MAX_AGE)
        cells = next(iter(rows.values()), {})
        data = cells.get((STATE_FAMILY, b"experiences"))
        return CurrentExperiences.model_validate_json(data) if data else None

    def after(
        self, retailer_id: str, shopper_id: str, event_id: str
    ) -> tuple[bool, CurrentExperiences | None]:
        """From one row read: whether ``event_id`` is among the events the decider applied
        to the shopper's state (written with the experiences, in one row mutation), and
        the current experiences."""
        key = state_key(retailer_id, shopper_id)
        rows = _read(self._api, self._table, [key], max_age=HOT_STATE_MAX_AGE)
        cells = next(iter(rows.values()), {})
        state = cells.get((STATE_FAMILY, b"state"))
        data = cells.get((STATE_FAMILY, b"experiences"))
        decided = state is not None and event_id in _recent_event_ids(state)
        return decided, CurrentExperiences.model_validate_json(data) if data else None


def _recent_event_ids(state: bytes) -> tuple[str, ...]:
    return ShopperState.model_validate_json(state).recent_event_ids


class BigtableTrees:
    """Personal trees read per batch; default trees cached for ``ttl_s``."""

    def __init__(
        self,
        client: Client,
        instance_id: str,
        table: str = EXPERIENCE_TREES_TABLE,
        ttl_s: float = 10.0,
    ) -> None:
        self._api = client.table_data_client
        self._table = client.instance(instance_id).table(table)
        self._defaults: TtlCache[ExperienceTree | None] = TtlCache(ttl_s)

    def personal(self, keys: Sequence[ShopperKey]) -> dict[ShopperKey, ExperienceTree]:
        wanted = {f"{r}#{s}".encode(): (r, s) for r, s in keys}
        rows = _read(self._api, self._table, list(wanted))
        return {
            wanted[key]: ExperienceTree.deserialize(cells[(TREE_FAMILY, b"tree")])
            for key, cells in rows.items()
            if (TREE_FAMILY, b"tree") in cells
        }

    def default(self, retailer_id: str) -> ExperienceTree | None:
        return self._defaults.get(retailer_id, self._load_default)

    def _load_default(self, retailer_id: str) -> ExperienceTree | None:
        rows = _read(self._api, self._table, [f"{retailer_id}#".encode()])
        cells = next(iter(rows.values()), {})
        data = cells.get((TREE_FAMILY, b"tree"))
        return ExperienceTree.deserialize(data) if data else None

    def put(self, trees: Sequence[ExperienceTree]) -> None:
        if not trees:
            return
        mutate_rows(
            self._api,
            self._table,
            [
                (
                    f"{t.retailer_id}#{t.shopper_id or ''}".encode(),
                    [(TREE_FAMILY, b"tree", t.serialize(), -1)],
                )
                for t in trees
            ],
        )
        for tree in trees:
            if tree.shopper_id is None:
                self._defaults.forget(tree.retailer_id)

    def put_many(self, trees: Iterable[ExperienceTree], batch_size: int = 500) -> int:
        """Bulk write (the nightly compilation): one MutateRows RPC per ``batch_size``
        trees, each a whole row replaced (``max_versions=1`` keeps the newest)."""
        written = 0
        batch: list[ExperienceTree] = []
        for tree in trees:
            batch.append(tree)
            if len(batch) >= batch_size:
                self.put(batch)
                written += len(batch)
                batch = []
        self.put(batch)
        return written + len(batch)
