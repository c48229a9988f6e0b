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
