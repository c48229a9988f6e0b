"""Who may call what with which key, from where (docs/INGEST.md, "Keys").

``caller`` checks a request's key and origin once for every API a browser may call; the
APIs then ask ``shopper_proof`` for the calls that read or act for one shopper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.platform.cors import allow_origin, preflight
from shared.platform.http import Response, error, header
from shared.retailers.identity import IdentityVersionStore, signature_is_valid
from shared.retailers.keys import ApiKey, ApiKeyStore, OriginIndex, identify


class KeyIndex(ApiKeyStore, OriginIndex, Protocol):
    """What a browser-facing API reads keys with: by hash, and which origins some key lists."""


def answer_preflight(headers: Mapping[str, str], methods: str, keys: OriginIndex) -> Response:
    return preflight(headers, methods, keys.allows_origin)


def readable_by_origin(
    response: Response, headers: Mapping[str, str], keys: OriginIndex
) -> Response:
    """``response`` with CORS headers when the request's origin is one a publishable key
    lists (a page there may read the answer, refusals included); unchanged otherwise."""
    origin = header(headers, "Origin")
    if origin and keys.allows_origin(origin):
        return allow_origin(response, origin)
    return response


@dataclass(frozen=True)
class Identity:
    """What verifies a browser's shopper signature."""

    master_key: str
    versions: IdentityVersionStore


def caller(
    keys: ApiKeyStore, headers: Mapping[str, str], query_key: str | None = None
) -> ApiKey | Response:
    """The request's key, or its refusal: unknown key (401); a publishable key from an
    origin it does not list (403); a secret key sent by a browser (403: it has leaked).

    ``query_key`` is the ``?key=`` of a beacon, which cannot carry headers: publishable
    keys only, never a secret one in a URL."""
    api_key = header(headers, "X-Api-Key") or query_key
    record = identify(keys, api_key)
    if record is None:
        return error(401, "unauthenticated", "missing or unknown X-Api-Key")
    origin = header(headers, "Origin")
    if record.publishable:
        if origin is not None and origin not in record.origins:
            return error(403, "origin_not_allowed", "this key is not for pages of this origin")
        return record
    if query_key is not None and not header(headers, "X-Api-Key"):
        return error(403, "secret_key_in_url", "a secret key is sent in X-Api-Key only")
    if origin is not None:
        return error(
            403,
            "secret_key_from_browser",
            "a secret key stays on the retailer's back end; pages use a publishable key",
        )
    return record


def back_end(keys: ApiKeyStore, headers: Mapping[str, str]) -> str | Response:
    """The retailer of a secret key, for the APIs only its back end calls (privacy); a
    publishable key is refused with its reason."""
    record = identify(keys, header(headers, "X-Api-Key"))
    if record is None:
        return error(401, "unauthenticated", "missing or unknown X-Api-Key")
    if record.publishable:
        return error(
            403,
            "secret_key_required",
            "this API is for the retailer's back end, with its secret key",
        )
    return record.retailer_id


def shopper_proof(
    record: ApiKey,
    headers: Mapping[str, str],
    shopper_id: str,
    identity: Identity,
    now: datetime,
) -> Response | None:
    """None when the caller may act for ``shopper_id``: a secret key always; a publishable
    key with the shopper's valid signature (``X-Shopper-Signature``)."""
    if not record.publishable:
        return None
    signature = header(headers, "X-Shopper-Signature")
    if not signature:
        return error(
            401, "shopper_signature_missing", "a publishable key needs X-Shopper-Signature"
        )
    versions = identity.versions.versions(record.retailer_id)
    if not signature_is_valid(
        identity.master_key, record.retailer_id, shopper_id, signature, versions, now
    ):
        return error(403, "shopper_signature_invalid", "the shopper signature does not match")
    return None
