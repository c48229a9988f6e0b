"""Bigtable adapter of ``RateLimiter``: a fixed one-second window per retailer.

Row ``{retailer}#{epoch_second}`` of ``rate_limits``, column ``n:events``, incremented by
each request's event count with one ReadModifyWriteRow (atomic, shared by every worker
and instance). A request that takes the second's count over the rate is refused and
waits for the next second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.bigtable_v2.types import ReadModifyWriteRowRequest, ReadModifyWriteRowResponse

from shared.platform.bigtable_raw import table_request
from shared.platform.errors import StoreUnavailableError
from shared.system.resources import RATE_LIMIT_FAMILY, RATE_LIMITS_TABLE

TIMEOUT_S = 5.0


class BigtableRateLimiter:
    def __init__(
        self,
        client: Any,
        instance_id: str,
        table: str = RATE_LIMITS_TABLE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = client.table_data_client
        self._table = client.instance(instance_id).table(table)
        self._clock = clock

    def take(self, key: str, amount: int, rate_per_s: float) -> float:
        now = self._clock()
        second = int(now)
        # A raw protobuf, as the event store's requests (one per ingest request).
        request = table_request(
            ReadModifyWriteRowRequest, self._table, row_key=f"{key}#{second}".encode()
        )
        rule = request.rules.add()
        rule.family_name = RATE_LIMIT_FAMILY
        rule.column_qualifier = b"events"
        rule.increment_amount = amount
        try:
            response = self._api.read_modify_write_row(
                request=ReadModifyWriteRowRequest.wrap(request), timeout=TIMEOUT_S
            )
        except (GoogleAPIError, OSError) as exc:
            raise StoreUnavailableError(f"bigtable {self._table.table_id}: {exc}") from exc
        row = ReadModifyWriteRowResponse.pb(response).row
        value = row.families[0].columns[0].cells[0].value
        counted = int.from_bytes(value, "big", signed=True)
        if counted <= rate_per_s or counted == amount:  # a first batch always goes
            return 0.0
        return second + 1 - now
