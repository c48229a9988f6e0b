from __future__ import annotations

from datetime import UTC, datetime

from shared.retailers.keys import (
    API_KEY_PREFIX,
    ApiKey,
    hash_api_key,
    identify,
    issue_api_key,
)


class MemoryApiKeyStore:
    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}

    def put(self, key: ApiKey) -> None:
        self.keys[key.key_hash] = key

    def get(self, key_hash: str) -> ApiKey | None:
        return self.keys.get(key_hash)


NOW = datetime(2026, 11, 23, tzinfo=UTC)


def test_issued_key_authenticates_and_only_its_hash_is_stored() -> None:
    store = MemoryApiKeyStore()
    key = issue_api_key(store, "r1", NOW)
    assert key.startswith(API_KEY_PREFIX)
    assert (found := identify(store, key)) is not None and found.retailer_id == "r1"
    assert list(store.keys) == [hash_api_key(key)]
    assert key not in str(store.keys)


def test_missing_unknown_and_revoked_keys_are_refused() -> None:
    store = MemoryApiKeyStore()
    key = issue_api_key(store, "r1", NOW)
    assert identify(store, None) is None
    assert identify(store, "") is None
    assert identify(store, key + "x") is None
    store.put(store.keys[hash_api_key(key)].model_copy(update={"revoked": True}))
    assert identify(store, key) is None


def test_keys_are_distinct() -> None:
    store = MemoryApiKeyStore()
    assert len({issue_api_key(store, "r", NOW) for _ in range(50)}) == 50
