"""Firestore adapter of retailer settings: collection ``retailers``, one document each."""

from __future__ import annotations

from typing import Any

from shared.platform.ttl_cache import TtlCache

COLLECTION = "retailers"


class FirestoreRetailerRates:
    """A retailer's configured event rate (``max_events_per_s``), cached for ``ttl_s``."""

    def __init__(self, client: Any, default_per_s: float, ttl_s: float = 60.0) -> None:
        self._collection = client.collection(COLLECTION)
        self._default = default_per_s
        self._cache: TtlCache[float] = TtlCache(ttl_s)

    def __call__(self, retailer_id: str) -> float:
        return self._cache.get(retailer_id, self._load)

    def _load(self, retailer_id: str) -> float:
        snapshot = self._collection.document(retailer_id).get()
        data = snapshot.to_dict() if snapshot.exists else None
        return float((data or {}).get("max_events_per_s", self._default))

    def set(self, retailer_id: str, max_events_per_s: float) -> None:
        self._collection.document(retailer_id).set(
            {"max_events_per_s": max_events_per_s}, merge=True
        )
        self._cache.forget(retailer_id)
