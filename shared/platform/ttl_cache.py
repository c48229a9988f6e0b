"""A small thread-safe cache whose entries (hits and misses alike) expire after a TTL, and
whose size is bounded: a flood of unknown keys (API keys, CSM tokens) evicts the least
recently used entries instead of growing memory. ``cachetools.TTLCache`` does the work."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from cachetools import TTLCache

V = TypeVar("V")

MAX_ENTRIES = 10_000


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._lock = threading.Lock()
        self._entries: TTLCache[str, tuple[V]] = TTLCache(max_entries, ttl_s, timer=clock)

    def get(self, key: str, load: Callable[[str], V]) -> V:
        """The cached value, or ``load(key)`` when absent or older than the TTL."""
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None:
            return hit[0]
        value = load(key)  # outside the lock: a slow store does not block other keys
        with self._lock:
            self._entries[key] = (value,)
        return value

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
