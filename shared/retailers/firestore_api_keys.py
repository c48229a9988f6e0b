"""Firestore adapter of ``ApiKeyStore``: collection ``api_keys``, one document per key hash."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.retailers.keys import ApiKey

if TYPE_CHECKING:
    from google.cloud import firestore

COLLECTION = "api_keys"


class FirestoreApiKeyStore:
    def __init__(self, client: firestore.Client, collection: str = COLLECTION) -> None:
        self._collection = client.collection(collection)

    def put(self, key: ApiKey) -> None:
        self._collection.document(key.key_hash).set(key.model_dump(mode="json"))

    def get(self, key_hash: str) -> ApiKey | None:
        snapshot = self._collection.document(key_hash).get()
        if not snapshot.exists:
            return None
        return ApiKey.model_validate(snapshot.to_dict())

    def of_retailer(self, retailer_id: str) -> list[ApiKey]:
        """Every key of ``retailer_id``, revoked ones included (``cartwise api-key list``)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._collection.where(filter=FieldFilter("retailer_id", "==", retailer_id))
        return [ApiKey.model_validate(snapshot.to_dict()) for snapshot in query.stream()]

    def allows_origin(self, origin: str) -> bool:
        """Whether an unrevoked publishable key lists ``origin`` (a preflight's question).
        Firestore indexes array fields for ``array_contains`` by default."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._collection.where(filter=FieldFilter("origins", "array_contains", origin))
        for snapshot in query.stream():  # a few keys per origin; revoked ones skipped
            key = ApiKey.model_validate(snapshot.to_dict())
            if key.publishable and not key.revoked:
                return True
        return False
