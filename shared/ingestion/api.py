"""The Shopper Event API over HTTP, independent of the web framework.

``handle`` maps a request (method, path, headers, body) to a response: every refusal has
a status and a machine-readable body ``{"error": {"code", "message", ...}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.contract.events import (
    MAX_EVENTS_PER_REQUEST,
    SCHEMA_VERSION,
    EventType,
    Rejection,
    event_json_schema,
    validate_event,
    validate_request_json,
)
from shared.ingestion.ratelimit import RateLimiter, TokenBuckets
from shared.ingestion.service import (
    MAX_REQUEST_BYTES,
    EventPublisher,
    EventStore,
    ParsedEvent,
    RejectedEventSink,
    ingest,
)
from shared.platform.errors import StoreUnavailableError
from shared.platform.http import (
    ERROR_SCHEMA,
    RETRY_AFTER_UNAVAILABLE_S,
    Response,
    error,
    error_response,
    header,
    load_json,
)
from shared.retailers.access import KeyIndex, answer_preflight, caller, readable_by_origin

log = logging.getLogger(__name__)


@dataclass
class IngestDependencies:
    store: EventStore
    publisher: EventPublisher
    rejected_sink: RejectedEventSink
    api_keys: KeyIndex
    rate_limit_per_s: Callable[[str], float]
    rate_limiter: RateLimiter = field(default_factory=TokenBuckets)
    # (retailer_id, shopper_id) -> True if the shopper objected (the suppression list).
    suppressed: Callable[[str, str], bool] | None = None


def parse_events(body: bytes) -> list[ParsedEvent] | Response:
    """The request's events, each typed or with its reasons; or the refusal of the body.

    A fully valid body (the usual case) is validated in one pass of the compiled
    validator; otherwise the body is parsed and each event validated on its own.
    """
    valid = validate_request_json(body)
    if valid is not None:
        return [ParsedEvent(event) for event in valid]
    try:
        document = load_json(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, "invalid_json", f"the body is not valid JSON: {exc}")
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        return error(400, "invalid_request", 'the body must be {"events": [...]}')
    if set(document) != {"events"}:
        extra = sorted(set(document) - {"events"})
        return error(400, "invalid_request", f"unknown top-level fields: {extra}")
    events = document["events"]
    if not events:
        return error(400, "invalid_request", "events is empty")
    if len(events) > MAX_EVENTS_PER_REQUEST:
        return error(
            413,
            "too_many_events",
            f"{len(events)} events; a request carries at most {MAX_EVENTS_PER_REQUEST}",
            limit_events=MAX_EVENTS_PER_REQUEST,
        )
    return [ParsedEvent(validate_event(raw), raw) for raw in events]


def events_in(body: bytes) -> int:
    """The events a body carries, counted before parsing it, so that the rate limit holds
    whatever the body costs to parse: each event has one ``"event_id"`` key, and those
    bytes cannot occur inside a JSON string (its quotes would be escaped). At least 1."""
    return max(1, min(body.count(b'"event_id"'), MAX_EVENTS_PER_REQUEST))


# Orders are confirmed by the retailer's back end (a secret key): from a page they would be
# claims anyone can forge, and a validated cart may grant a play.
ORDER_EVENT_TYPES = frozenset({EventType.CART_VALIDATED, EventType.ORDER_STATUS_CHANGED})
# A beacon (navigator.sendBeacon) cannot set headers: its key comes in ``?key=`` and its
# body as text/plain, the one type a cross-origin beacon may send without a preflight
# (publishable keys only: a back end sends application/json).
MEDIA_TYPES = frozenset({"application/json", "text/plain"})


def behaviour_only(parsed: list[ParsedEvent]) -> list[ParsedEvent]:
    """A publishable key's events: orders refused one by one (``secret_key_required``)."""
    refused = [
        Rejection(
            code="secret_key_required",
            field="type",
            message="orders are confirmed by the retailer's back end with its secret key",
        )
    ]
    return [
        ParsedEvent(
            refused,
            p.raw if p.raw is not None else p.outcome.model_dump(mode="json", exclude_none=True),
        )
        if not isinstance(p.outcome, list) and p.outcome.type in ORDER_EVENT_TYPES
        else p
        for p in parsed
    ]


def post_events(
    headers: Mapping[str, str],
    body: bytes,
    deps: IngestDependencies,
    query: Mapping[str, str] | None = None,
) -> Response:
    record = caller(deps.api_keys, headers, (query or {}).get("key"))
    if isinstance(record, Response):
        return record
    retailer_id = record.retailer_id
    content_type = (header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type not in MEDIA_TYPES or (
        content_type != "application/json" and not record.publishable
    ):
        return error(415, "unsupported_media_type", "send Content-Type: application/json")
    if len(body) > MAX_REQUEST_BYTES:
        return error(
            413,
            "request_too_large",
            f"a request carries at most {MAX_REQUEST_BYTES} bytes",
            limit_bytes=MAX_REQUEST_BYTES,
        )
    try:
        wait_s = deps.rate_limiter.take(
            retailer_id, events_in(body), deps.rate_limit_per_s(retailer_id)
        )
    except StoreUnavailableError as exc:
        log.warning("rate limiter unavailable", extra={"error": str(exc)})
        return error(
            503,
            "unavailable",
            "a store is unavailable; retry",
            retry_after_s=RETRY_AFTER_UNAVAILABLE_S,
        )
    if wait_s > 0:
        return error(
            429,
            "rate_limited",
            "this retailer's configured event rate is exceeded",
            retry_after_s=wait_s,
        )
    parsed = parse_events(body)
    if isinstance(parsed, Response):
        return parsed
    if record.publishable:
        parsed = behaviour_only(parsed)
    try:
        result = ingest(
            retailer_id,
            parsed,
            store=deps.store,
            publisher=deps.publisher,
            rejected_sink=deps.rejected_sink,
            suppressed=deps.suppressed,
        )
    except StoreUnavailableError as exc:
        log.warning("store unavailable", extra={"retailer_id": retailer_id, "error": str(exc)})
        return error(
            503,
            "unavailable",
            "a store is unavailable; nothing of this request was accepted; retry it as is",
            retry_after_s=RETRY_AFTER_UNAVAILABLE_S,
        )
    return Response(202, result.body())


def handle(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    deps: Callable[[], IngestDependencies],
    query: Mapping[str, str] | None = None,
) -> Response:
    route = path.rstrip("/") or "/"
    if route == "/v1/events":
        if method == "OPTIONS":
            return answer_preflight(headers, "POST", deps().api_keys)
        if method != "POST":
            return error(405, "method_not_allowed", "use POST", allow="POST")
        dependencies = deps()
        return readable_by_origin(
            post_events(headers, body, dependencies, query), headers, dependencies.api_keys
        )
    if method == "GET" and route == "/openapi.json":
        return Response(200, openapi())
    if method == "GET" and route == f"/v1/schemas/shopper-event/v{SCHEMA_VERSION}.json":
        return Response(200, event_json_schema())
    return error(404, "not_found", f"no route {method} {path}")


# --- OpenAPI -----------------------------------------------------------------------------


def openapi() -> dict[str, Any]:
    event_schema = event_json_schema()
    definitions = event_schema.pop("$defs", {})
    event_schema.pop("$id", None)
    schemas: dict[str, Any] = {**definitions, "ShopperEvent": event_schema, "Error": ERROR_SCHEMA}
    text = json.dumps(schemas).replace("#/$defs/", "#/components/schemas/")

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cartwise Shopper Event API",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": "Trackers send shopper events; the retailer comes from the API key.",
        },
        "components": {
            "schemas": json.loads(text),
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/events": {
                "options": {
                    "operationId": "preflightEvents",
                    "security": [],
                    "responses": {
                        "204": {"description": "CORS preflight of an origin a key lists"},
                        "403": error_response("No publishable key lists this origin"),
                    },
                },
                "post": {
                    "operationId": "postEvents",
                    "summary": "Send up to 500 shopper events (1 MiB)",
                    "description": "A secret key (cwk_, the retailer's back end) sends every "
                    "event type; a publishable key (cwpk_, web pages, from the origins it "
                    "lists) sends behaviour only: cart_validated and order_status_changed "
                    "are rejected secret_key_required. A beacon sends its publishable key "
                    "as ?key= and its body as text/plain.",
                    "parameters": [
                        {
                            "name": "key",
                            "in": "query",
                            "required": False,
                            "description": "A publishable key, for beacons only",
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["events"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "events": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": MAX_EVENTS_PER_REQUEST,
                                            "items": {"$ref": "#/components/schemas/ShopperEvent"},
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Every accepted event is stored and published; "
                            "duplicates and rejected events are listed.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["accepted", "duplicates", "rejected"],
                                        "properties": {
                                            "accepted": {"type": "integer"},
                                            "duplicate_count": {"type": "integer"},
                                            "rejected_count": {"type": "integer"},
                                            "duplicates": {"type": "array"},
                                            "rejected": {"type": "array"},
                                        },
                                    }
                                }
                            },
                        },
                        "400": error_response("The body cannot be parsed"),
                        "401": error_response("Missing or unknown API key"),
                        "403": error_response(
                            "origin_not_allowed (a publishable key from an origin it does "
                            "not list), secret_key_in_url, secret_key_from_browser"
                        ),
                        "413": error_response("Over 500 events or 1 MiB"),
                        "415": error_response("Content-Type is not application/json"),
                        "429": error_response("The retailer's rate is exceeded (Retry-After)"),
                        "503": error_response("A store is unavailable (Retry-After); retry as is"),
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "security": [],
                    "responses": {"200": {"description": "This document"}},
                }
            },
            f"/v1/schemas/shopper-event/v{SCHEMA_VERSION}.json": {
                "get": {
                    "operationId": "eventSchema",
                    "security": [],
                    "responses": {"200": {"description": "JSON Schema of one event"}},
                }
            },
        },
    }
