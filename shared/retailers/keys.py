"""Retailers and their API keys. Keys are random; only their SHA-256 is stored.

Two kinds (docs/INGEST.md, "Keys"):

- a **secret key** (``cwk_``) stays on the retailer's back end: it posts every event type,
  confirms orders (a validated cart from it may grant a play), reads any shopper's
  experiences and calls the privacy APIs;
- a **publishable key** (``cwpk_``) is placed in web pages, so it is public: it may only
  post behaviour, from the web origins listed on it, and read the experiences of (or play
  for) a shopper whose signature the retailer's back end handed to the page
  (``shared.retailers.identity``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from shared.platform.ttl_cache import TtlCache

API_KEY_PREFIX = "cwk_"
PUBLISHABLE_KEY_PREFIX = "cwpk_"
KeyKind = Literal["secret", "publishable"]


class ApiKey(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key_hash: str
    retailer_id: str
    created_at: datetime
    revoked: bool = False
    kind: KeyKind = "secret"
    origins: tuple[str, ...] = ()  # a publishable key's web origins (scheme://host[:port])

    @property
    def publishable(self) -> bool:
        return self.kind == "publishable"


class ApiKeyStore(Protocol):
    def put(self, key: ApiKey) -> None: ...

    def get(self, key_hash: str) -> ApiKey | None: ...


class OriginIndex(Protocol):
    def allows_origin(self, origin: str) -> bool: ...


def hash_api_key(api_key: str) -> str:
    """SHA-256 suffices: keys are 256-bit random secrets, not guessable passwords."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key(kind: KeyKind = "secret") -> str:
    prefix = PUBLISHABLE_KEY_PREFIX if kind == "publishable" else API_KEY_PREFIX
    return prefix + secrets.token_urlsafe(32)


def key_record(
    retailer_id: str,
    api_key: str,
    now: datetime,
    kind: KeyKind = "secret",
    origins: tuple[str, ...] = (),
) -> ApiKey:
    if kind == "publishable" and not origins:
        raise ValueError("a publishable key lists the web origins it may be used from")
    return ApiKey(
        key_hash=hash_api_key(api_key),
        retailer_id=retailer_id,
        created_at=now,
        kind=kind,
        origins=origins,
    )


def issue_api_key(
    store: ApiKeyStore,
    retailer_id: str,
    now: datetime,
    kind: KeyKind = "secret",
    origins: tuple[str, ...] = (),
) -> str:
    """Create a key for ``retailer_id``; the clear key is returned once and never stored."""
    api_key = new_api_key(kind)
    store.put(key_record(retailer_id, api_key, now, kind, origins))
    return api_key


def register_api_key(
    store: ApiKeyStore,
    retailer_id: str,
    api_key: str,
    now: datetime,
    kind: KeyKind = "secret",
    origins: tuple[str, ...] = (),
) -> None:
    """Store a key chosen elsewhere (the local stack keeps its demo keys across restarts)."""
    store.put(key_record(retailer_id, api_key, now, kind, origins))


def identify(store: ApiKeyStore, api_key: str | None) -> ApiKey | None:
    """The key's record, or None if it is missing, unknown or revoked."""
    if not api_key:
        return None
    record = store.get(hash_api_key(api_key))
    if record is None or record.revoked:
        return None
    return record


class CachedApiKeys:
    """Caches key lookups (hits and misses) for ``ttl_s``: one store read per key a minute;
    and the preflights' origin lookups, when the store answers them."""

    def __init__(self, store: ApiKeyStore, ttl_s: float = 60.0) -> None:
        self._store = store
        self._cache: TtlCache[ApiKey | None] = TtlCache(ttl_s)
        self._origins: TtlCache[bool] = TtlCache(ttl_s)

    def allows_origin(self, origin: str) -> bool:
        index = self._store
        if not hasattr(index, "allows_origin"):
            return False
        return self._origins.get(origin, index.allows_origin)

    def put(self, key: ApiKey) -> None:
        self._store.put(key)
        self._cache.forget(key.key_hash)

    def get(self, key_hash: str) -> ApiKey | None:
        return self._cache.get(key_hash, self._store.get)
