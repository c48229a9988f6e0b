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

from shared.ingest import StoreUnavailableError
from shared.resources import RATE_LIMIT_FAMILY, RATE_LIMITS_TABLE

TIMEOUT_S = 5.0


class BigtableRateLimiter:
    def __init__(
        self,
        client: Any,
        instance_id: str,
        table: str = RATE_LIMITS_TABLE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = client.instance(instance_id).table(table)
        self._clock = clock

    def take(self, key: str, amount: int, rate_per_s: float) -> float:
        now = self._clock()
        second = int(now)
        row = self._table.append_row(f"{key}#{second}".encode())
        row.increment_cell_value(RATE_LIMIT_FAMILY, b"events", amount)
        try:
            cells = row.commit()
        except (GoogleAPIError, OSError) as exc:
            raise StoreUnavailableError(f"bigtable {self._table.table_id}: {exc}") from exc
        counted = int.from_bytes(cells[RATE_LIMIT_FAMILY][b"events"][0][0], "big", signed=True)
        if counted <= rate_per_s or counted == amount:  # a first batch always goes
            return 0.0
        return second + 1 - now
