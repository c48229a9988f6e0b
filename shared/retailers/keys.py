"""Retailers and their API keys. Keys are random secrets; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from shared.platform.ttl_cache import TtlCache

API_KEY_PREFIX = "cwk_"


class ApiKey(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key_hash: str
    retailer_id: str
    created_at: datetime
    revoked: bool = False


class ApiKeyStore(Protocol):
    def put(self, key: ApiKey) -> None: ...

    def get(self, key_hash: str) -> ApiKey | None: ...


def hash_api_key(api_key: str) -> str:
    """SHA-256 suffices: keys are 256-bit random secrets, not guessable passwords."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def issue_api_key(store: ApiKeyStore, retailer_id: str, now: datetime) -> str:
    """Create a key for ``retailer_id``; the clear key is returned once and never stored."""
    api_key = new_api_key()
    store.put(ApiKey(key_hash=hash_api_key(api_key), retailer_id=retailer_id, created_at=now))
    return api_key


def register_api_key(store: ApiKeyStore, retailer_id: str, api_key: str, now: datetime) -> None:
    """Store a key chosen elsewhere (the local stack keeps its demo key across restarts)."""
    store.put(ApiKey(key_hash=hash_api_key(api_key), retailer_id=retailer_id, created_at=now))


def authenticate(store: ApiKeyStore, api_key: str | None) -> str | None:
    """The retailer an API key belongs to, or None if it is missing, unknown or revoked."""
    if not api_key:
        return None
    record = store.get(hash_api_key(api_key))
    if record is None or record.revoked:
        return None
    return record.retailer_id


class CachedApiKeys:
    """Caches key lookups (hits and misses) for ``ttl_s``: one store read per key a minute."""

    def __init__(self, store: ApiKeyStore, ttl_s: float = 60.0) -> None:
        self._store = store
        self._cache: TtlCache[ApiKey | None] = TtlCache(ttl_s)

    def put(self, key: ApiKey) -> None:
        self._store.put(key)
        self._cache.forget(key.key_hash)

    def get(self, key_hash: str) -> ApiKey | None:
        return self._cache.get(key_hash, self._store.get)
