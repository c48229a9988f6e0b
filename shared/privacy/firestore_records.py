"""Firestore adapters of the privacy ports (default database).

- ``erasure_requests/{request_id}``: ``ErasureRequest`` (the customer identifier only
  while the request runs).
- ``suppressions/{retailer}:{hash}:{reason}``: the suppression list (hashes only).
- ``privacy_audit/{auto id}``: one ``AuditRecord`` per store and purge or erasure.
- ``retailers/{retailer}``: field ``retention_days`` ({data class: days}).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.platform.errors import StoreUnavailableError
from shared.privacy.retention import RetailerRetention, RetentionDefaults, validate_periods
from shared.privacy.service import (
    AuditRecord,
    ErasureRequest,
    Suppression,
)
from shared.privacy_marks.marks import SuppressionReason

ERASURE_REQUESTS = "erasure_requests"
SUPPRESSIONS = "suppressions"
AUDIT = "privacy_audit"
RETAILERS = "retailers"
API_KEYS = "api_keys"
NIGHTLY_RUNS = "nightly_runs"
WRITE_BATCH = 400  # under Firestore's 500 writes per batch


class FirestoreErasureRequests:
    def __init__(self, client: Any) -> None:
        self._collection = client.collection(ERASURE_REQUESTS)

    def put(self, request: ErasureRequest) -> None:
        self._collection.document(request.request_id).set(request.model_dump(mode="json"))

    def get(self, request_id: str) -> ErasureRequest | None:
        snapshot = self._collection.document(request_id).get()
        return ErasureRequest.model_validate(snapshot.to_dict()) if snapshot.exists else None

    def running_for(self, retailer_id: str, shopper_hash: str) -> ErasureRequest | None:
        query = (
            self._collection.where(filter=FieldFilter("retailer_id", "==", retailer_id))
            .where(filter=FieldFilter("shopper_hash", "==", shopper_hash))
            .where(filter=FieldFilter("status", "==", "running"))
            .limit(1)
        )
        found = [ErasureRequest.model_validate(s.to_dict()) for s in query.stream()]
        return found[0] if found else None

    def running(self, limit: int) -> list[ErasureRequest]:
        query = self._collection.where(filter=FieldFilter("status", "==", "running"))
        found = [ErasureRequest.model_validate(s.to_dict()) for s in query.stream()]
        return sorted(found, key=lambda r: r.requested_at)[:limit]


class FirestoreSuppressionList:
    def __init__(self, client: Any) -> None:
        self._collection = client.collection(SUPPRESSIONS)

    def add(self, suppression: Suppression) -> None:
        key = f"{suppression.retailer_id}:{suppression.shopper_hash}:{suppression.reason}"
        self._collection.document(key).set(suppression.model_dump(mode="json"))

    def hashes(self, retailer_id: str, reasons: Sequence[SuppressionReason]) -> frozenset[str]:
        query = self._collection.where(filter=FieldFilter("retailer_id", "==", retailer_id))
        try:
            documents = [s.to_dict() or {} for s in query.stream()]
        except (GoogleAPIError, OSError) as exc:
            raise StoreUnavailableError(f"firestore {SUPPRESSIONS}: {exc}") from exc
        return frozenset(
            str(data["shopper_hash"]) for data in documents if data.get("reason") in reasons
        )


class FirestoreAuditLog:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._collection = client.collection(AUDIT)

    def record(self, records: Sequence[AuditRecord]) -> None:
        for start in range(0, len(records), WRITE_BATCH):
            batch = self._client.batch()
            for record in records[start : start + WRITE_BATCH]:
                batch.set(self._collection.document(), record.model_dump(mode="json"))
            batch.commit()


class FirestoreRetention:
    """Retailers (those with an API key or a settings document) and their periods.

    ``credentials`` is the client of the credentials database (the API keys), read only;
    without it only settings documents name retailers."""

    def __init__(
        self, client: Any, defaults: RetentionDefaults, credentials: Any | None = None
    ) -> None:
        self._client = client
        self._defaults = defaults
        self._credentials = credentials

    def retailers(self) -> list[str]:
        found = {s.id for s in self._client.collection(RETAILERS).stream()}
        if self._credentials is not None:
            found |= {
                str(s.to_dict().get("retailer_id"))
                for s in self._credentials.collection(API_KEYS).stream()
                if s.to_dict().get("retailer_id")
            }
        return sorted(found)

    def retention(self, retailer_id: str) -> RetailerRetention:
        snapshot = self._client.collection(RETAILERS).document(retailer_id).get()
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        return RetailerRetention(
            retailer_id=retailer_id,
            days=validate_periods(self._defaults, data.get("retention_days") or {}),
        )

    def set(self, retailer_id: str, days: dict[str, int]) -> RetailerRetention:
        """Set some of a retailer's periods (checked against the ceilings)."""
        checked = validate_periods(self._defaults, days)
        current = self.retention(retailer_id)
        merged = {**current.days, **checked}
        self._client.collection(RETAILERS).document(retailer_id).set(
            {"retention_days": {c.value: d for c, d in merged.items()}}, merge=True
        )
        return RetailerRetention(retailer_id=retailer_id, days=merged)


class FirestoreNightlyRunsInProgress:
    """The nightly run in progress, if any: an erasure's last pass waits for it (a run
    that read the shopper's rows before the first pass may still write its feature
    tables). A run still ``running`` after ``max_run`` is taken as dead (its workflow
    ended without recording the outcome) and no longer holds erasures."""

    def __init__(self, client: Any, max_run: timedelta, clock: Callable[[], datetime]) -> None:
        self._collection = client.collection(NIGHTLY_RUNS)
        self._max_run = max_run
        self._clock = clock

    def __call__(self) -> str | None:
        query = self._collection.where(filter=FieldFilter("status", "==", "running"))
        try:
            snapshots = list(query.stream())
        except (GoogleAPIError, OSError) as exc:
            raise StoreUnavailableError(f"firestore {NIGHTLY_RUNS}: {exc}") from exc
        alive_from = self._clock() - self._max_run
        for snapshot in snapshots:
            started = (snapshot.to_dict() or {}).get("started_at")
            if started and datetime.fromisoformat(str(started)) >= alive_from:
                return f"nightly run {snapshot.id} in progress"
        return None


class FirestoreNightlyRunAges:
    """The nightly runs started before a moment (the nightly tables' purge)."""

    def __init__(self, client: Any) -> None:
        self._collection = client.collection(NIGHTLY_RUNS)

    def __call__(self, cutoff: datetime) -> list[str]:
        found = []
        for snapshot in self._collection.stream():
            started = (snapshot.to_dict() or {}).get("started_at")
            if started and datetime.fromisoformat(str(started)) < cutoff:
                found.append(snapshot.id)
        return found
