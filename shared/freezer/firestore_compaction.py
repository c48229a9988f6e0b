"""Firestore adapter of ``CompactionLedger``: the lease and the watermarks in one document.

``compactions/read-models`` (``(default)`` database) holds ``owner``, ``lease_until`` and
``watermarks`` (read model -> the ``landed_at`` up to which it is compacted). Every write is
conditional on the document's update time (optimistic concurrency, as the rewards ledger
does): of two compactions that read the same state, one write wins and the other learns it
holds no lease. No shopper data in it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from google.api_core.exceptions import Conflict, FailedPrecondition, NotFound

from shared.freezer.read_models import COMPACTIONS_COLLECTION as COMPACTIONS

READ_MODELS_DOCUMENT = "read-models"


class FirestoreCompactionLedger:
    def __init__(self, client: Any, document: str = READ_MODELS_DOCUMENT) -> None:
        self._client = client
        self._doc = client.collection(COMPACTIONS).document(document)

    def acquire(self, owner: str, now: datetime, lease_s: float) -> dict[str, datetime] | None:
        lease = {"owner": owner, "lease_until": now + timedelta(seconds=lease_s)}
        snapshot = self._doc.get()
        if not snapshot.exists:
            try:
                self._doc.create({**lease, "watermarks": {}})
            except Conflict:
                return None
            return {}
        data = snapshot.to_dict() or {}
        if data.get("owner") != owner and data.get("lease_until") and data["lease_until"] > now:
            return None
        try:
            self._doc.update(
                lease, option=self._client.write_option(last_update_time=snapshot.update_time)
            )
        except (FailedPrecondition, NotFound):
            return None
        return dict(data.get("watermarks") or {})

    def advance(self, owner: str, table: str, watermark: datetime, now: datetime) -> bool:
        snapshot = self._doc.get()
        data = snapshot.to_dict() or {}
        if not snapshot.exists or data.get("owner") != owner or data["lease_until"] <= now:
            return False
        try:
            self._doc.update(
                {f"watermarks.{table}": watermark},
                option=self._client.write_option(last_update_time=snapshot.update_time),
            )
        except (FailedPrecondition, NotFound):
            return False
        return True

    def release(self, owner: str) -> None:
        snapshot = self._doc.get()
        if not snapshot.exists or (snapshot.to_dict() or {}).get("owner") != owner:
            return
        try:
            self._doc.update(
                {"owner": None, "lease_until": None},
                option=self._client.write_option(last_update_time=snapshot.update_time),
            )
        except (FailedPrecondition, NotFound):
            return

    def watermarks(self) -> dict[str, datetime]:
        snapshot = self._doc.get()
        return dict((snapshot.to_dict() or {}).get("watermarks") or {}) if snapshot.exists else {}
