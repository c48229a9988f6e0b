"""The experiences API over HTTP: what a tracker shows a shopper now.

``GET /v1/experiences`` names the shopper in ``X-Shopper-Id`` (never in the URL, which
request logs keep) and answers the shopper's current experiences and the id of the event
they answer. The retailer comes from the key and is part of the lookup: a shopper of
another retailer is a 404. A publishable key (a page's) also needs the shopper's
signature (``X-Shopper-Signature``, docs/INGEST.md "Keys").

``?after=<event_id>&wait_ms=<n>`` waits, up to ``n`` ms, until that event has been
decided, and answers as soon as it is (its decision, or a later event's): a tracker asks
once per event instead of polling. 204 when the wait ends first. The wait re-reads the
shopper's one state row every ``poll_s`` (10 ms, growing to 50 ms after half a second):
the decision is usually there within ~0.1 s (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.contract.events import IDENTIFIER, UUID_PATTERN
from shared.decisions.service import CurrentExperiences
from shared.platform.errors import StoreUnavailableError
from shared.platform.http import (
    ERROR_SCHEMA,
    RETRY_AFTER_UNAVAILABLE_S,
    Response,
    error,
    error_response,
    header,
)
from shared.privacy_marks.marks import NO_MARKS, Gate, Marks
from shared.retailers.access import (
    Identity,
    KeyIndex,
    answer_preflight,
    caller,
    readable_by_origin,
    shopper_proof,
)

ROUTE = "/v1/experiences"
_SHOPPER = re.compile(IDENTIFIER)
_EVENT_ID = re.compile(UUID_PATTERN)
SLOW_POLL_AFTER_S = 0.5


class CurrentExperiencesReader(Protocol):
    def current(self, retailer_id: str, shopper_id: str) -> CurrentExperiences | None: ...

    def after(
        self, retailer_id: str, shopper_id: str, event_id: str
    ) -> tuple[bool, CurrentExperiences | None]:
        """Whether ``event_id`` has been decided (applied to the shopper's state), and the
        shopper's current experiences, from one read."""
        ...


@dataclass
class ExperiencesDependencies:
    api_keys: KeyIndex
    experiences: CurrentExperiencesReader
    identity: Identity
    # Privacy marks: nothing is served of an objected shopper, nor what was decided of an
    # erased shopper before the erasure (docs/PRIVACY.md).
    privacy: Gate
    max_wait_ms: int = 10_000
    poll_s: float = 0.01
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _wait_ms(query: Mapping[str, str], deps: ExperiencesDependencies) -> int | Response:
    raw = query.get("wait_ms", "0")
    if not raw.isdigit() or len(raw) > 6:
        return error(
            400, "invalid_wait_ms", f"wait_ms is a whole number of ms (0..{deps.max_wait_ms})"
        )
    return min(int(raw), deps.max_wait_ms)


def _unavailable() -> Response:
    return error(
        503, "unavailable", "a store is unavailable; retry", retry_after_s=RETRY_AFTER_UNAVAILABLE_S
    )


def _answer(current: CurrentExperiences | None, marks: Marks, now: datetime) -> Response:
    if current is None or marks.blocks(current.decided_at, now):
        return error(404, "not_found", "no experiences for this shopper yet")
    return Response(200, current.model_dump(mode="json"))


def wait_for(
    retailer_id: str,
    shopper_id: str,
    event_id: str,
    wait_ms: int,
    deps: ExperiencesDependencies,
    marks: Marks = NO_MARKS,
) -> Response:
    """The shopper's experiences once ``event_id`` is decided; 204 if ``wait_ms`` ends first."""
    started = deps.clock()
    deadline = started + wait_ms / 1000
    while True:
        decided, current = deps.experiences.after(retailer_id, shopper_id, event_id)
        if decided:
            return _answer(current, marks, deps.now())
        now = deps.clock()
        if now >= deadline:
            return Response(204, {})
        poll = deps.poll_s if now - started < SLOW_POLL_AFTER_S else 5 * deps.poll_s
        deps.sleep(min(poll, deadline - now))


def get_experiences(
    headers: Mapping[str, str], query: Mapping[str, str], deps: ExperiencesDependencies
) -> Response:
    record = caller(deps.api_keys, headers)
    if isinstance(record, Response):
        return record
    shopper_id = header(headers, "X-Shopper-Id") or ""
    if not _SHOPPER.fullmatch(shopper_id):
        return error(400, "invalid_shopper_id", "X-Shopper-Id is not a customer identifier")
    refused = shopper_proof(record, headers, shopper_id, deps.identity, deps.now())
    if refused is not None:
        return refused
    after = query.get("after")
    if after is not None and not _EVENT_ID.fullmatch(after):
        return error(400, "invalid_after", "after is the event_id (a UUID) of an event sent")
    after = after.lower() if after is not None else None  # event ids are stored lower-case
    wait_ms = _wait_ms(query, deps)
    if isinstance(wait_ms, Response):
        return wait_ms
    try:
        key = (record.retailer_id, shopper_id)
        marks = deps.privacy.marks([key]).get(key, NO_MARKS)
        if marks.objected_at is not None:  # from the moment the objection is recorded
            return error(404, "not_found", "no experiences for this shopper yet")
        if after is None:
            current = deps.experiences.current(record.retailer_id, shopper_id)
            return _answer(current, marks, deps.now())
        return wait_for(record.retailer_id, shopper_id, after, wait_ms, deps, marks)
    except StoreUnavailableError:
        return _unavailable()


def handle(
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    deps: Callable[[], ExperiencesDependencies],
) -> Response:
    route = path.rstrip("/") or "/"
    if route == ROUTE:
        if method == "OPTIONS":
            return answer_preflight(headers, "GET", deps().api_keys)
        if method != "GET":
            return error(405, "method_not_allowed", "use GET", allow="GET")
        dependencies = deps()
        return readable_by_origin(
            get_experiences(headers, query, dependencies), headers, dependencies.api_keys
        )
    if method == "GET" and route == "/openapi.json":
        return Response(200, openapi())
    return error(404, "not_found", f"no route {method} {path}")


def openapi() -> dict[str, Any]:
    schema = CurrentExperiences.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})

    def in_header(name: str, description: str, required: bool = True) -> dict[str, Any]:
        return {
            "name": name,
            "in": "header",
            "required": required,
            "description": description,
            "schema": {"type": "string"},
        }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cartwise experiences API",
            "version": "2.0.0",
            "description": "A secret key (the retailer's back end) reads any of its shoppers; "
            "a publishable key (a web page, from an origin it lists) reads only the shopper "
            "whose X-Shopper-Signature the retailer's back end gave the page.",
        },
        "components": {
            "schemas": {
                **definitions,
                "CurrentExperiences": schema,
                "Error": ERROR_SCHEMA,
            },
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        },
        "security": [{"apiKey": []}],
        "paths": {
            ROUTE: {
                "get": {
                    "operationId": "getExperiences",
                    "parameters": [
                        in_header("X-Shopper-Id", "The retailer's customer identifier"),
                        in_header(
                            "X-Shopper-Signature",
                            "hex HMAC-SHA256(identity secret, shopper id); publishable keys",
                            required=False,
                        ),
                        {
                            "name": "after",
                            "in": "query",
                            "required": False,
                            "description": "Wait until this event (its event_id) is decided",
                            "schema": {"type": "string", "pattern": UUID_PATTERN},
                        },
                        {
                            "name": "wait_ms",
                            "in": "query",
                            "required": False,
                            "description": "The longest wait for `after` (capped at 10,000)",
                            "schema": {"type": "integer", "minimum": 0, "default": 0},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The shopper's current experiences",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/CurrentExperiences"}
                                }
                            },
                        },
                        "204": {"description": "`after` was not decided within wait_ms"},
                        "400": error_response("Not a customer identifier, or a bad query"),
                        "401": error_response(
                            "Missing or unknown API key (unauthenticated), or a publishable "
                            "key without X-Shopper-Signature (shopper_signature_missing)"
                        ),
                        "403": error_response(
                            "shopper_signature_invalid, origin_not_allowed, secret_key_from_browser"
                        ),
                        "404": error_response("No experiences for this shopper of this retailer"),
                        "503": error_response("A store is unavailable (Retry-After)"),
                    },
                },
                "options": {
                    "operationId": "preflightExperiences",
                    "security": [],
                    "responses": {
                        "204": {"description": "CORS preflight of an origin a key lists"},
                        "403": error_response("No publishable key lists this origin"),
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
        },
    }
