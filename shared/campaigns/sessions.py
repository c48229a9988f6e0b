"""The back office's sessions: server-side, revocable, expiring; a CSRF token each.

A login opens a session: a random id (256 bits) that only the browser's cookie holds;
the store keeps its SHA-256 (never the id), the account's key hash, a CSRF token, when it
was created and last used. A session ends at the first of: ``absolute_s`` after login,
``idle_s`` after its last request, logout (deleted server-side), or its account revoked.
Every state-changing POST of the back office must carry the session's CSRF token
(synchronizer token pattern): a form field that a page of another site cannot read.

Failed logins are limited per client (``LoginThrottle``): in memory, per instance.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from shared.campaigns.admin import CsmAccount, CsmAccountStore


class BackOfficeSession(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    session_hash: str
    account_key_hash: str
    csm_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    absolute_expires_at: datetime
    # The first of the absolute and the idle expiry as of the last request: Firestore's
    # TTL policy deletes the record once it has passed (the code never relies on that).
    expires_at: datetime


class SessionStore(Protocol):
    def create(self, session: BackOfficeSession) -> None: ...

    def get(self, session_hash: str) -> BackOfficeSession | None: ...

    def touch(self, session_hash: str, last_seen_at: datetime, expires_at: datetime) -> None: ...

    def delete(self, session_hash: str) -> None: ...


@dataclass(frozen=True)
class SessionPolicy:
    absolute_s: int = 8 * 3600
    idle_s: int = 30 * 60
    # A session's last use is written at most this often (one write per page otherwise);
    # the idle expiry is exact to within it.
    touch_every_s: int = 60


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(
    store: SessionStore, account: CsmAccount, policy: SessionPolicy, now: datetime
) -> tuple[str, BackOfficeSession]:
    """A new session of ``account``: its id (for the cookie only) and its record."""
    session_id = secrets.token_urlsafe(32)
    absolute = now + timedelta(seconds=policy.absolute_s)
    session = BackOfficeSession(
        session_hash=hash_session_id(session_id),
        account_key_hash=account.key_hash,
        csm_id=account.csm_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        absolute_expires_at=absolute,
        expires_at=min(absolute, now + timedelta(seconds=policy.idle_s)),
    )
    store.create(session)
    return session_id, session


def expiry(session: BackOfficeSession, policy: SessionPolicy) -> datetime:
    return min(session.absolute_expires_at, session.last_seen_at + timedelta(seconds=policy.idle_s))


def resume(
    store: SessionStore,
    accounts: CsmAccountStore,
    session_id: str | None,
    policy: SessionPolicy,
    now: datetime,
) -> tuple[BackOfficeSession, CsmAccount] | None:
    """The live session of this cookie and its account, or None (unknown, expired,
    revoked account). An expired session's record is deleted on sight."""
    if not session_id or len(session_id) > 128:
        return None
    session = store.get(hash_session_id(session_id))
    if session is None:
        return None
    if expiry(session, policy) <= now:
        store.delete(session.session_hash)
        return None
    account = accounts.get(session.account_key_hash)
    if account is None or account.revoked:
        return None
    if (now - session.last_seen_at).total_seconds() >= policy.touch_every_s:
        seen = session.model_copy(update={"last_seen_at": now})
        store.touch(session.session_hash, now, expiry(seen, policy))
    return session, account


def close(store: SessionStore, session: BackOfficeSession) -> None:
    store.delete(session.session_hash)


def csrf_ok(session: BackOfficeSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(
        session.csrf_token.encode(), (submitted or "").encode()
    )


class LoginThrottle:
    """At most ``max_failures`` failed logins per client in a sliding ``window_s``; then
    every login of that client is refused (429) until the oldest failure leaves the window.

    Per instance (in memory): with N instances a client gets up to N times the limit. A
    login names no account (the access key is the account, 256 random bits), so there is
    no per-account count to keep: guessing a key is hopeless; the limit keeps floods off
    the credentials store."""

    MAX_CLIENTS = 10_000

    def __init__(self, max_failures: int = 5, window_s: int = 15 * 60) -> None:
        self._max = max_failures
        self._window = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures

    def retry_after(self, client: str, now: datetime) -> int | None:
        """Seconds until this client may try again, or None if it may now."""
        t = now.timestamp()
        with self._lock:
            failures = self._recent(client, t)
            if len(failures) < self._max:
                return None
            return max(1, int(failures[0] + self._window - t) + 1)

    def failed(self, client: str, now: datetime) -> None:
        t = now.timestamp()
        with self._lock:
            if len(self._failures) >= self.MAX_CLIENTS and client not in self._failures:
                for name in [n for n, f in self._failures.items() if not self._recent(n, t)]:
                    del self._failures[name]
                if len(self._failures) >= self.MAX_CLIENTS:  # still full: forget the oldest
                    del self._failures[next(iter(self._failures))]
            failures = self._recent(client, t)
            failures.append(t)
            self._failures[client] = failures
