"""Signed play tokens: the invitation to a gamified promotion, bound to one order.

``payload.signature``, both base64url; the payload names the retailer, shopper, order,
campaign and experience and an expiry, and the signature is HMAC-SHA256 under the
signing key. A token whose payload or signature was changed, signed with another key,
or expired is refused; one play per order is the rewards game's rule (it keeps the
orders already played).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

VALIDITY = timedelta(days=7)


class PlayGrant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: str
    shopper_id: str
    order_id: str
    campaign_id: str
    experience_id: str
    expires_at: AwareDatetime


class InvalidTokenError(ValueError):
    """The token is malformed, tampered with, signed with another key, or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(grant: PlayGrant, key: bytes) -> str:
    payload = json.dumps(grant.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
    signature = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"{_b64(payload.encode())}.{_b64(signature)}"


def verify(token: str, key: bytes, now: datetime) -> PlayGrant:
    try:
        payload_text, signature_text = token.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except ValueError as exc:
        raise InvalidTokenError("malformed token") from exc
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidTokenError("bad signature")
    try:
        grant = PlayGrant.model_validate_json(payload)
    except ValidationError as exc:
        raise InvalidTokenError("malformed payload") from exc
    if grant.expires_at <= now:
        raise InvalidTokenError("expired")
    return grant
