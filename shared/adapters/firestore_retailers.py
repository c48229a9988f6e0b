"""Firestore adapter of retailer settings: collection ``retailers``, one document each."""

from __future__ import annotations

import threading
import time
from typing import Any

COLLECTION = "retailers"


class FirestoreRetailerRates:
    """A retailer's configured event rate (``max_events_per_s``), cached for ``ttl_s``."""

    def __init__(self, client: Any, default_per_s: float, ttl_s: float = 60.0) -> None:
        self._collection = client.collection(COLLECTION)
        self._default = default_per_s
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, float]] = {}

    def __call__(self, retailer_id: str) -> float:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(retailer_id)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        snapshot = self._collection.document(retailer_id).get()
        data = snapshot.to_dict() if snapshot.exists else None
        rate = float((data or {}).get("max_events_per_s", self._default))
        with self._lock:
            self._cache[retailer_id] = (now, rate)
        return rate

    def set(self, retailer_id: str, max_events_per_s: float) -> None:
        self._collection.document(retailer_id).set(
            {"max_events_per_s": max_events_per_s}, merge=True
        )
        with self._lock:
            self._cache.pop(retailer_id, None)
