"""Rate limiting per retailer.

``RateLimiter`` is the port; the Bigtable adapter (``shared.ingestion.bigtable_rate_limits``)
counts events per retailer and per second in one atomic increment, shared by every worker
and instance. ``TokenBuckets`` is the in-process variant (one process, tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class RateLimiter(Protocol):
    def take(self, key: str, amount: int, rate_per_s: float) -> float:
        """Count ``amount`` against ``key``; 0 if within the rate, else seconds to wait."""
        ...


class TokenBuckets:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, amount: int, rate_per_s: float) -> float:
        burst_s = 1.0
        """Take ``amount`` tokens; return 0 if granted, else the seconds to wait."""
        capacity = max(rate_per_s * burst_s, float(amount))
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * rate_per_s)
            if tokens >= amount:
                self._buckets[key] = (tokens - amount, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (amount - tokens) / rate_per_s
