"""CORS for the APIs a browser calls (ingest, experiences, plays), framework-free.

A preflight (``OPTIONS``) carries no API key: it is answered for an origin that some
publishable key lists (``allowed(origin)``), with the methods and headers the tracker
sends and a max age, so that a browser preflights once per ``MAX_AGE_S``; any other origin
gets no CORS headers, so its browser blocks the call. The request that follows is checked
against its own key's origins (``shared.retailers.access``) and answered with
``Access-Control-Allow-Origin`` for that origin only (never ``*``: answers differ per
origin, hence ``Vary: Origin``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from shared.platform.http import Response, error, header

ALLOWED_HEADERS = "Content-Type, X-Api-Key, X-Shopper-Id, X-Shopper-Signature"
EXPOSED_HEADERS = "Retry-After"
MAX_AGE_S = 7200  # Chromium caps a preflight's cache at 2 hours


def preflight(headers: Mapping[str, str], methods: str, allowed: Callable[[str], bool]) -> Response:
    origin = header(headers, "Origin")
    if not origin or not allowed(origin):
        return error(403, "origin_not_allowed", "no publishable key lists this origin")
    return Response(
        204,
        {},
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(MAX_AGE_S),
            "Vary": "Origin",
        },
    )


def allow_origin(response: Response, origin: str | None) -> Response:
    """``response`` readable by a page of ``origin`` (already checked against the key)."""
    if not origin:
        return response
    return replace(
        response,
        headers={
            **response.headers,
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSED_HEADERS,
            "Vary": "Origin",
        },
    )
