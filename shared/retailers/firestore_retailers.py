"""Firestore adapter of retailer settings: collection ``retailers``, one document each."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.platform.ttl_cache import TtlCache
from shared.retailers.identity import IdentityVersions

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


class FirestoreIdentityVersions:
    """``IdentityVersionStore``: a retailer document's ``identity_version``,
    ``identity_previous_version`` and ``identity_previous_until``, cached for ``ttl_s``."""

    def __init__(self, client: Any, ttl_s: float = 30.0) -> None:
        self._collection = client.collection(COLLECTION)
        self._cache: TtlCache[IdentityVersions] = TtlCache(ttl_s)

    def versions(self, retailer_id: str) -> IdentityVersions:
        return self._cache.get(retailer_id, self._load)

    def _load(self, retailer_id: str) -> IdentityVersions:
        snapshot = self._collection.document(retailer_id).get()
        data = (snapshot.to_dict() if snapshot.exists else None) or {}
        return IdentityVersions(
            current=int(data.get("identity_version", 1)),
            previous=data.get("identity_previous_version"),
            previous_until=data.get("identity_previous_until"),
        )

    def rotate(self, retailer_id: str, grace: timedelta, now: datetime) -> IdentityVersions:
        """The next version becomes current; the current one stays valid for ``grace``."""
        old = self._load(retailer_id)
        new = IdentityVersions(old.current + 1, old.current, now + grace)
        self._collection.document(retailer_id).set(
            {
                "identity_version": new.current,
                "identity_previous_version": new.previous,
                "identity_previous_until": new.previous_until,
            },
            merge=True,
        )
        self._cache.forget(retailer_id)
        return new
