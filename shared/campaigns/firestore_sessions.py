"""Firestore adapter of ``SessionStore``: database ``back-office``, collection ``sessions``,
one document per session id hash (never the id itself). A TTL policy on ``expires_at``
(declared in shared/system/resources.py, deployed by Pulumi) deletes expired records."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from shared.campaigns.sessions import BackOfficeSession

COLLECTION = "sessions"


class FirestoreSessions:
    def __init__(self, client: Any, collection: str = COLLECTION) -> None:
        self._collection = client.collection(collection)

    def create(self, session: BackOfficeSession) -> None:
        # Timestamps as Firestore timestamps: a TTL policy needs one in expires_at.
        self._collection.document(session.session_hash).create(session.model_dump())

    def get(self, session_hash: str) -> BackOfficeSession | None:
        snapshot = self._collection.document(session_hash).get()
        return BackOfficeSession.model_validate(snapshot.to_dict()) if snapshot.exists else None

    def touch(self, session_hash: str, last_seen_at: datetime, expires_at: datetime) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):  # logged out meanwhile: nothing to extend
            self._collection.document(session_hash).update(
                {"last_seen_at": last_seen_at, "expires_at": expires_at}
            )

    def delete(self, session_hash: str) -> None:
        self._collection.document(session_hash).delete()
