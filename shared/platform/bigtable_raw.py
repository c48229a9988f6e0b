"""Raw-protobuf Bigtable calls shared by the adapters.

The client library's per-row and per-cell wrappers cost several times more CPU than the
RPCs themselves (docs/BENCHMARKS.md): requests are built as raw protobufs, responses read
as raw protobufs, and errors mapped to ``StoreUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.bigtable_v2.types import (
    MutateRowsRequest,
    MutateRowsResponse,
    ReadRowsRequest,
    ReadRowsResponse,
)

from shared.platform.errors import StoreUnavailableError

if TYPE_CHECKING:
    from google.cloud.bigtable.table import Table

TIMEOUT_S = 10.0


Cell = tuple[str, bytes, bytes, int]  # family, column, value, timestamp_micros (-1: server)


def table_request(request_type: Any, table: Table, **fields: Any) -> Any:
    """A raw protobuf request of ``request_type`` (``ReadRowsRequest``, ...) for ``table``,
    naming the table's app profile as the library's own requests do (``Table`` keeps it
    private: ``_app_profile_id``; empty: the instance's default profile)."""
    profile = getattr(table, "_app_profile_id", None) or ""
    return request_type.pb()(table_name=table.name, app_profile_id=profile, **fields)


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1000) * 1000  # Bigtable keeps milliseconds


def mutate_rows(api: Any, table: Table, rows: list[tuple[bytes, list[Cell]]]) -> None:
    """One MutateRows RPC, built as a raw protobuf (the per-cell wrappers of the client
    library cost ~5x more CPU than the RPC itself: docs/BENCHMARKS.md)."""
    request = table_request(MutateRowsRequest, table)
    for row_key, cells in rows:
        entry = request.entries.add()
        entry.row_key = row_key
        for family, column, value, timestamp in cells:
            set_cell = entry.mutations.add().set_cell
            set_cell.family_name = family
            set_cell.column_qualifier = column
            set_cell.value = value
            set_cell.timestamp_micros = timestamp
    failed: list[str] = []
    try:
        for response in api.mutate_rows(request=MutateRowsRequest.wrap(request), timeout=TIMEOUT_S):
            # The raw protobuf again: proto-plus wraps each of the entries on access.
            entries = MutateRowsResponse.pb(response).entries
            failed += [e.status.message for e in entries if e.status.code != 0]
    except (GoogleAPIError, OSError) as exc:
        raise StoreUnavailableError(f"bigtable {table.table_id}: {exc}") from exc
    if failed:
        raise StoreUnavailableError(
            f"bigtable {table.table_id}: {len(failed)} rows failed ({failed[0]})"
        )


def read_rows(api: Any, request: Any) -> Iterator[tuple[bytes, dict[tuple[str, bytes], bytes]]]:
    """One ReadRows RPC from a raw protobuf request: each row's key and its latest cells.

    Merges the response's cell chunks as the protocol defines them (a row's key, family
    and qualifier are sent when they change; a value may be split over chunks; a row is
    committed or reset), without the client library's per-cell objects.
    """
    key = b""
    family = ""
    qualifier = b""
    value = b""
    cells: dict[tuple[str, bytes], bytes] = {}
    for response in api.read_rows(request=ReadRowsRequest.wrap(request), timeout=TIMEOUT_S):
        for chunk in ReadRowsResponse.pb(response).chunks:
            if chunk.reset_row:
                cells, value = {}, b""
                continue
            if chunk.row_key:
                key = chunk.row_key
            if chunk.HasField("family_name"):
                family = chunk.family_name.value
            if chunk.HasField("qualifier"):
                qualifier = chunk.qualifier.value
            value += chunk.value
            if chunk.value_size == 0:  # the cell is complete
                cells.setdefault((family, qualifier), value)
                value = b""
            if chunk.commit_row:
                yield key, cells
                cells = {}
