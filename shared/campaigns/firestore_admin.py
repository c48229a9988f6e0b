"""Firestore adapters of the back office's ports.

- ``csm_accounts`` (database ``credentials``, read only for the function): one document
  per CSM access key hash (never the key itself);
- ``campaign_audit``: one document per change, append-only (no transaction, no hot
  document: each change writes its own document);
- ``retailers`` (``(default)``) and ``api_keys`` (``credentials``): a retailer is known
  when it has a settings document or an API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.campaigns.admin import AuditRecord, CsmAccount
from shared.platform.ttl_cache import TtlCache

ACCOUNTS = "csm_accounts"
AUDIT = "campaign_audit"


class FirestoreCsmAccounts:
    def __init__(self, client: Any, ttl_s: float = 30.0) -> None:
        self._collection = client.collection(ACCOUNTS)
        self._cache: TtlCache[CsmAccount | None] = TtlCache(ttl_s)

    def put(self, account: CsmAccount) -> None:
        self._collection.document(account.key_hash).set(account.model_dump(mode="json"))
        self._cache.forget(account.key_hash)

    def get(self, key_hash: str) -> CsmAccount | None:
        return self._cache.get(key_hash, self._load)

    def _load(self, key_hash: str) -> CsmAccount | None:
        snapshot = self._collection.document(key_hash).get()
        return CsmAccount.model_validate(snapshot.to_dict()) if snapshot.exists else None


class FirestoreAuditLog:
    def __init__(self, client: Any) -> None:
        self._collection = client.collection(AUDIT)

    def append(self, record: AuditRecord) -> None:
        # create(): an audit record is never overwritten.
        self._collection.document(record.audit_id).create(record.model_dump(mode="json"))

    def of_campaign(self, campaign_id: str) -> list[AuditRecord]:
        query = self._collection.where(filter=FieldFilter("campaign_id", "==", campaign_id))
        return [AuditRecord.model_validate(s.to_dict()) for s in query.stream()]


class FirestoreRetailerDirectory:
    """Known retailers: a ``retailers`` document or an ``api_keys`` entry names them
    (``credentials``: the client of the credentials database)."""

    def __init__(self, client: Any, credentials: Any) -> None:
        self._client = client
        self._credentials = credentials
        self._known_ids: set[str] = set()  # retailers are never deleted: cache the known

    def unknown(self, retailer_ids: Sequence[str]) -> set[str]:
        missing = {r for r in retailer_ids if r not in self._known_ids and not self._known(r)}
        self._known_ids.update(set(retailer_ids) - missing)
        return missing

    def _known(self, retailer_id: str) -> bool:
        if self._client.collection("retailers").document(retailer_id).get().exists:
            return True
        keys = self._credentials.collection("api_keys").where(
            filter=FieldFilter("retailer_id", "==", retailer_id)
        )
        return any(True for _ in keys.limit(1).stream())
