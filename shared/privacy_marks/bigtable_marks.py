"""Bigtable adapter of ``PrivacyMarks``: table ``privacy_marks``.

Row key ``{retailer}#{shopper hash}`` (no customer identifier). Family ``e`` (erasures,
column ``at``: the latest erasure's time, ISO 8601) is collected by age after
``ERASURE_MARK_DAYS``; family ``o`` (objections, column ``at``) keeps one version for as long
as the row lives. Garbage collection is asynchronous ("up to a week" after a cell
becomes eligible: https://cloud.google.com/bigtable/docs/garbage-collection), so the
domain rule (``Marks.blocks``) checks the age itself. Reads are single-row lookups of the
batch's shoppers in one ReadRows RPC: strongly consistent on a single-cluster instance
(the marks are read from the moment they are written).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.bigtable_v2.types import ReadRowsRequest

from shared.platform.bigtable_raw import mutate_rows, read_rows, table_request
from shared.platform.errors import StoreUnavailableError
from shared.privacy_marks.marks import MarkKey, Marks, PrivacyGate, ShopperHasher, SuppressionReason
from shared.system.resources import ERASED_FAMILY, OBJECTED_FAMILY, PRIVACY_MARKS_TABLE

if TYPE_CHECKING:
    from google.cloud.bigtable.client import Client

    from shared.system.settings import HashesShoppers

_FAMILY: dict[SuppressionReason, str] = {"erased": ERASED_FAMILY, "objected": OBJECTED_FAMILY}


def mark_key(retailer_id: str, shopper_hash: str) -> bytes:
    return f"{retailer_id}#{shopper_hash}".encode()


class BigtablePrivacyMarks:
    def __init__(self, client: Client, instance_id: str, table: str = PRIVACY_MARKS_TABLE) -> None:
        self._api: Any = client.table_data_client
        self._table = client.instance(instance_id).table(table)  # type: ignore[no-untyped-call]

    def put(
        self, retailer_id: str, shopper_hash: str, reason: SuppressionReason, at: datetime
    ) -> None:
        mutate_rows(
            self._api,
            self._table,
            [
                (
                    mark_key(retailer_id, shopper_hash),
                    [(_FAMILY[reason], b"at", at.isoformat().encode(), -1)],
                )
            ],
        )

    def get(self, keys: Sequence[MarkKey]) -> dict[MarkKey, Marks]:
        wanted = {mark_key(r, h): (r, h) for r, h in keys}
        request = table_request(ReadRowsRequest, self._table)
        request.rows.row_keys.extend(wanted)
        request.filter.cells_per_column_limit_filter = 1
        try:
            rows = dict(read_rows(self._api, request))
        except (GoogleAPIError, OSError) as exc:
            raise StoreUnavailableError(f"bigtable {self._table.table_id}: {exc}") from exc
        found = {}
        for key, cells in rows.items():
            erased = cells.get((ERASED_FAMILY, b"at"))
            objected = cells.get((OBJECTED_FAMILY, b"at"))
            found[wanted[key]] = Marks(
                erased_at=datetime.fromisoformat(erased.decode()) if erased else None,
                objected_at=datetime.fromisoformat(objected.decode()) if objected else None,
            )
        return found


def privacy_gate(settings: HashesShoppers, client: Client | None = None) -> PrivacyGate:
    """The gate every writer and the experiences API check (one per process), from the
    component's settings; ``client``: its Bigtable client, when it already has one."""
    from shared.platform import clients

    bigtable = (
        client
        if client is not None
        else clients.bigtable_client(settings.project, app_profile_id=settings.bigtable_app_profile)
    )
    return PrivacyGate(
        BigtablePrivacyMarks(bigtable, settings.bigtable_instance),
        ShopperHasher(settings.shopper_hash_key.encode()),
    )
