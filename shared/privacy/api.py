"""The privacy APIs over HTTP, independent of the web framework.

Retailers' back ends (``X-Api-Key``, the tracker keys):
- ``POST /v1/erasure-requests`` ``{"shopper_id": ...}``: 202 with the request id; the
  erasure runs asynchronously (``privacy_maintenance``, every minute).
- ``GET /v1/erasure-requests/{request_id}``: its status and a receipt per store.
- ``POST /v1/suppressions`` ``{"shopper_id": ...}``: the shopper objects to processing;
  their events are refused from then on (within the ingest cache's TTL).

Cloud Scheduler (``privacy_maintenance``, private): ``POST /purge``, ``POST /erasures/run``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.contract.events import IDENTIFIER
from shared.ingestion.ratelimit import RateLimiter, TokenBuckets
from shared.platform.errors import StoreUnavailableError
from shared.platform.http import (
    ERROR_SCHEMA,
    RETRY_AFTER_UNAVAILABLE_S,
    Response,
    error,
    error_response,
    load_json,
)
from shared.privacy.retention import RetentionDefaults
from shared.privacy.service import (
    AuditLog,
    ErasureRequestStore,
    RetentionSource,
    StoreRegistry,
    SuppressionList,
    object_to_processing,
    purge,
    request_erasure,
    run_pending_erasures,
)
from shared.privacy_marks.marks import PrivacyMarks, ShopperHasher
from shared.retailers.access import back_end
from shared.retailers.keys import ApiKeyStore

log = logging.getLogger(__name__)

_SHOPPER = re.compile(IDENTIFIER)
_REQUEST = re.compile(r"^/v1/erasure-requests/([0-9a-f]{32})$")
MAX_BODY_BYTES = 4096


@dataclass
class ErasureApiDependencies:
    api_keys: ApiKeyStore
    requests: ErasureRequestStore
    suppressions: SuppressionList
    marks: PrivacyMarks
    hasher: ShopperHasher
    store_names: Callable[[], list[str]]  # the registry's stores (the receipts to come)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # New erasure requests and objections per retailer and instance (a token bucket with one
    # second of burst): a flood cannot fill the queue every sweep reads.
    requests_per_s: float = 10.0
    rate_limiter: RateLimiter = field(default_factory=TokenBuckets)


def _shopper_of(body: bytes) -> str | Response:
    if len(body) > MAX_BODY_BYTES:
        return error(413, "request_too_large", f"at most {MAX_BODY_BYTES} bytes")
    try:
        document = load_json(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, "invalid_json", f"the body is not valid JSON: {exc}")
    if not isinstance(document, dict) or set(document) != {"shopper_id"}:
        return error(400, "invalid_request", 'the body must be {"shopper_id": "..."}')
    shopper_id = document["shopper_id"]
    if not isinstance(shopper_id, str) or not _SHOPPER.fullmatch(shopper_id):
        return error(400, "invalid_shopper_id", "not a customer identifier", field="shopper_id")
    return shopper_id


def _unavailable() -> Response:
    return error(
        503, "unavailable", "a store is unavailable; retry", retry_after_s=RETRY_AFTER_UNAVAILABLE_S
    )


def handle_erasure_api(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    deps: Callable[[], ErasureApiDependencies],
) -> Response:
    route = path.rstrip("/") or "/"
    if method == "GET" and route == "/openapi.json":
        return Response(200, openapi())
    known = route in {"/v1/erasure-requests", "/v1/suppressions"} or _REQUEST.match(route)
    if not known:
        return error(404, "not_found", f"no route {method} {path}")
    d = deps()
    retailer_id = back_end(d.api_keys, headers)
    if isinstance(retailer_id, Response):
        return retailer_id
    try:
        match = _REQUEST.match(route)
        if match:
            if method != "GET":
                return error(405, "method_not_allowed", "use GET", allow="GET")
            request = d.requests.get(match.group(1))
            if request is None or request.retailer_id != retailer_id:
                return error(404, "not_found", "no such erasure request for this retailer")
            return Response(200, request.public())
        if method != "POST":
            return error(405, "method_not_allowed", "use POST", allow="POST")
        shopper_id = _shopper_of(body)
        if isinstance(shopper_id, Response):
            return shopper_id
        wait_s = d.rate_limiter.take(f"privacy:{retailer_id}", 1, d.requests_per_s)
        if wait_s > 0:
            return error(
                429,
                "rate_limited",
                f"at most {d.requests_per_s:g} erasure requests and objections per second",
                retry_after_s=wait_s,
            )
        created = request_erasure(
            d.requests,
            d.suppressions,
            d.marks,
            d.hasher,
            d.store_names(),
            retailer_id,
            shopper_id,
            d.clock(),
        )
        location = {"Location": f"/v1/erasure-requests/{created.request_id}"}
        if route == "/v1/suppressions":
            # An objection stops personalization: ingest refuses the shopper's events from
            # now on, and what was held (state, trees, scores, history) is erased by the
            # erasure request above (docs/PRIVACY.md, "Objection").
            suppression = object_to_processing(
                d.suppressions, d.marks, d.hasher, retailer_id, shopper_id, d.clock()
            )
            recorded = {
                **suppression.model_dump(mode="json"),
                "erasure_request_id": created.request_id,
            }
            return Response(201, recorded, location)
        return Response(202, created.public(), location)
    except StoreUnavailableError as exc:
        log.warning("privacy store unavailable", extra={"error": str(exc)})
        return _unavailable()


# --- maintenance (Cloud Scheduler) -------------------------------------------------------


@dataclass
class MaintenanceDependencies:
    registry: StoreRegistry
    requests: ErasureRequestStore
    audit: AuditLog
    retention: RetentionSource
    defaults: RetentionDefaults
    is_transient: Callable[[BaseException], bool]
    requests_per_sweep: int = 20
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # An erasure's last pass starts this long after the request (docs/PRIVACY.md).
    erasure_settle: timedelta = timedelta(0)
    # What long work may still write a shopper's data (a nightly run in progress): an
    # erasure's last pass waits for it (docs/PRIVACY.md).
    work_in_progress: Callable[[], str | None] = lambda: None


def handle_maintenance(
    method: str, path: str, deps: Callable[[], MaintenanceDependencies]
) -> Response:
    route = path.rstrip("/") or "/"
    if route not in {"/purge", "/erasures/run"}:
        return error(404, "not_found", f"no route {method} {path}")
    if method != "POST":
        return error(405, "method_not_allowed", "use POST", allow="POST")
    d = deps()
    if route == "/purge":
        report = purge(d.registry, d.retention, d.defaults, d.audit, d.clock(), d.is_transient)
        # Pending work answers 503: Cloud Scheduler retries the job.
        return Response(503 if report.pending else 200, report.model_dump(mode="json"))
    done = run_pending_erasures(
        d.registry,
        d.requests,
        d.audit,
        d.clock,
        d.is_transient,
        d.requests_per_sweep,
        d.erasure_settle,
        d.work_in_progress,
    )
    return Response(
        200,
        {
            "requests": [
                {
                    "request_id": r.request_id,
                    "status": r.status,
                    "pending": sorted(n for n, x in r.receipts.items() if x.status != "done"),
                }
                for r in done
            ]
        },
    )


# --- OpenAPI -----------------------------------------------------------------------------


def openapi() -> dict[str, Any]:

    shopper_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["shopper_id"],
                    "additionalProperties": False,
                    "properties": {"shopper_id": {"type": "string", "pattern": IDENTIFIER}},
                }
            }
        },
    }
    receipt = {
        "type": "object",
        "required": ["status", "deleted", "attempts"],
        "properties": {
            "status": {"enum": ["pending", "done"]},
            "deleted": {"type": "integer", "description": "records deleted from this store"},
            "at": {"type": ["string", "null"], "format": "date-time"},
            "attempts": {"type": "integer"},
            "last_error": {
                "type": ["string", "null"],
                "description": "why the store is still pending (retried every minute)",
            },
        },
    }
    request = {
        "type": "object",
        "required": ["request_id", "retailer_id", "shopper_hash", "status", "receipts"],
        "properties": {
            "request_id": {"type": "string"},
            "retailer_id": {"type": "string"},
            "shopper_hash": {
                "type": "string",
                "description": "HMAC-SHA256 of the shopper id (the id itself is never answered)",
            },
            "status": {"enum": ["running", "done"]},
            "requested_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "receipts": {"type": "object", "additionalProperties": receipt},
            "passes": {
                "type": "integer",
                "description": "passes over every store so far; done after a last pass "
                "that starts after the settle",
            },
            "waiting_for": {
                "type": ["string", "null"],
                "description": "what holds the last pass (a nightly run in progress)",
            },
        },
    }
    common = {
        "400": error_response("Invalid body or shopper id"),
        "401": error_response("Missing or unknown API key"),
        "403": error_response("secret_key_required: a publishable key (a web page's)"),
        "429": error_response("rate_limited: too many requests of this retailer (Retry-After)"),
        "503": error_response("A store is unavailable (Retry-After)"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "cartwise privacy API", "version": "1.0.0"},
        "components": {
            "schemas": {
                "ErasureRequest": request,
                "Error": ERROR_SCHEMA,
            },
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/erasure-requests": {
                "post": {
                    "operationId": "requestErasure",
                    "summary": "Erase everything known about one shopper (asynchronous)",
                    "requestBody": shopper_body,
                    "responses": {
                        "202": {
                            "description": "Accepted: the request, its receipts pending",
                            "content": {"application/json": {"schema": request}},
                        },
                        **common,
                    },
                }
            },
            "/v1/erasure-requests/{request_id}": {
                "get": {
                    "operationId": "getErasureRequest",
                    "parameters": [
                        {
                            "name": "request_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "Status and a receipt per store",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ErasureRequest"}
                                }
                            },
                        },
                        "404": error_response("No such request for this retailer"),
                        **common,
                    },
                }
            },
            "/v1/suppressions": {
                "post": {
                    "operationId": "objectToProcessing",
                    "summary": "The shopper objects: their events are refused from now on, "
                    "and what was held of them is erased (erasure_request_id, Location)",
                    "requestBody": shopper_body,
                    "responses": {
                        "201": {
                            "description": "Suppressed (hash recorded); an erasure request "
                            "of the shopper started"
                        },
                        **common,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "security": [],
                    "responses": {"200": {"description": "This document"}},
                }
            },
        },
    }
