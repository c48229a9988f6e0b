"""Shopper signatures: proof, carried by a browser, that the page belongs to the shopper
signed in on the retailer's site (identity verification as Intercom does it).

The retailer's back end computes ``HMAC-SHA256(identity secret, shopper_id)`` (hex) and
hands it to the page with the shopper id; the browser sends both, never the secret. Each
retailer's identity secret is derived from one cartwise master key (Secret Manager in the
cloud, ``SHOPPER_IDENTITY_KEY``) and a version number: rotating a retailer's secret bumps
its version, and the previous version stays valid until its grace period ends
(``IdentityVersions``), so pages already served keep working.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


def identity_secret(master_key: str, retailer_id: str, version: int) -> str:
    """The secret a retailer's back end signs its shoppers with (``cartwise identity
    secret`` prints it)."""
    message = f"shopper-identity:{retailer_id}:{version}".encode()
    return hmac.new(master_key.encode(), message, hashlib.sha256).hexdigest()


def shopper_signature(secret: str, shopper_id: str) -> str:
    """What the retailer's back end computes for the page (hex HMAC-SHA256)."""
    return hmac.new(secret.encode(), shopper_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class IdentityVersions:
    """A retailer's current version, and the previous one with the end of its grace."""

    current: int = 1
    previous: int | None = None
    previous_until: datetime | None = None

    def valid(self, now: datetime) -> Sequence[int]:
        if self.previous is not None and self.previous_until and now < self.previous_until:
            return (self.current, self.previous)
        return (self.current,)


class IdentityVersionStore(Protocol):
    def versions(self, retailer_id: str) -> IdentityVersions: ...


def signature_is_valid(
    master_key: str,
    retailer_id: str,
    shopper_id: str,
    signature: str | None,
    versions: IdentityVersions,
    now: datetime,
) -> bool:
    """Constant-time comparison against every version valid ``now``."""
    if not signature or len(signature) != 64:
        return False
    given = signature.lower().encode()
    return any(
        hmac.compare_digest(
            shopper_signature(identity_secret(master_key, retailer_id, v), shopper_id).encode(),
            given,
        )
        for v in versions.valid(now)
    )
