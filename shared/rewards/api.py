"""The rewards game over HTTP (tracker-facing, retailer ``X-Api-Key``).

A secret key (the retailer's back end) plays for any of its shoppers; a publishable key (a
page's, from an origin it lists) plays only for the shopper of ``X-Shopper-Id`` with that
shopper's ``X-Shopper-Signature``, and only tokens granted to that shopper.

- ``POST /v1/plays`` ``{"play_token": ...}``: play the order the token grants. 201 with
  the outcome the first time; 200 with the *same* outcome (``"replayed": true``) when the
  same token comes again (a retry, or the token replayed): one draw per order, ever.
- ``POST /v1/plays/{play_id}/claim`` ``{"play_token": ..., "email": ...}``: a winner gives
  the address to be paid at; it goes to the rewards database only.
- ``GET /openapi.json``: this API's OpenAPI document.

Every refusal is a 4xx (or 503) with ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
from shared.privacy_marks.marks import Gate
from shared.retailers.access import (
    Identity,
    KeyIndex,
    answer_preflight,
    caller,
    readable_by_origin,
    shopper_proof,
)
from shared.retailers.keys import ApiKey
from shared.rewards.game import (
    MAX_EMAIL_LENGTH,
    Play,
    PlayRefusedError,
    RewardsDependencies,
    RewardsVault,
    claim,
    play,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
_PLAYS = re.compile(r"^/v1/plays/?$")
_CLAIM = re.compile(r"^/v1/plays/([A-Za-z0-9_-]{1,64})/claim/?$")


class PlayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    play_token: str = Field(min_length=1, max_length=4096)


class ClaimRequest(PlayRequest):
    email: str = Field(min_length=3, max_length=MAX_EMAIL_LENGTH)


class PlayAnswer(BaseModel):
    """What the tracker shows: the outcome, never anything the shopper did not give."""

    play_id: str
    order_id: str
    campaign_id: str
    outcome: str = Field(description="won or lost")
    reason: str = Field(
        description="drawn, or budget_exhausted (a drawn win the budget cannot pay)"
    )
    prize_value: str
    played_at: datetime
    replayed: bool = Field(description="true: the order was played before; its original outcome")
    claimed: bool
    voided: bool
    paid: bool


def answer(played: Play, replayed: bool) -> dict[str, Any]:
    return PlayAnswer(
        play_id=played.play_id,
        order_id=played.order_id,
        campaign_id=played.campaign_id,
        outcome="won" if played.won else "lost",
        reason=played.reason or "drawn",
        prize_value=str(played.prize_value),
        played_at=played.played_at,
        replayed=replayed,
        claimed=played.claimed,
        voided=played.voided,
        paid=played.paid,
    ).model_dump(mode="json")


@dataclass
class PlaysDependencies:
    api_keys: KeyIndex
    identity: Identity
    rewards: RewardsDependencies
    vault: RewardsVault
    privacy: Gate  # no play for an objected shopper, nor a token from before an erasure
    unavailable: tuple[type[Exception], ...] = (StoreUnavailableError,)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def _body(raw: bytes, model: type[PlayRequest]) -> PlayRequest | Response:
    if len(raw) > MAX_BODY_BYTES:
        return error(413, "too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    try:
        document = load_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, "invalid_json", f"the body is not valid JSON: {exc}")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        return error(400, "invalid_request", f"{field}: {first['msg']}")


def _guarded(call: Callable[[], Response], deps: PlaysDependencies) -> Response:
    try:
        return call()
    except PlayRefusedError as refusal:
        extra = {"retry_after_s": RETRY_AFTER_UNAVAILABLE_S} if refusal.status == 503 else {}
        return error(refusal.status, refusal.code, refusal.message, **extra)
    except deps.unavailable as exc:
        log.warning("rewards store unavailable", extra={"error": str(exc)})
        return error(
            503,
            "unavailable",
            "a store is unavailable; retry",
            retry_after_s=RETRY_AFTER_UNAVAILABLE_S,
        )


def _player(
    headers: Mapping[str, str], deps: PlaysDependencies
) -> tuple[ApiKey, str | None] | Response:
    """The caller's key and, for a publishable key, the signed shopper it plays for."""
    record = caller(deps.api_keys, headers)
    if isinstance(record, Response):
        return record
    if not record.publishable:
        return record, None
    shopper_id = header(headers, "X-Shopper-Id") or ""
    if not shopper_id:
        return error(400, "invalid_shopper_id", "a publishable key names X-Shopper-Id")
    refused = shopper_proof(record, headers, shopper_id, deps.identity, deps.clock())
    return refused if refused is not None else (record, shopper_id)


def post_play(headers: Mapping[str, str], raw: bytes, deps: PlaysDependencies) -> Response:
    player = _player(headers, deps)
    if isinstance(player, Response):
        return player
    record, shopper_id = player
    retailer_id = record.retailer_id
    request = _body(raw, PlayRequest)
    if isinstance(request, Response):
        return request

    def run() -> Response:
        outcome = play(
            deps.rewards,
            retailer_id,
            request.play_token,
            deps.clock(),
            privacy=deps.privacy,
            shopper_id=shopper_id,
        )
        log.info(
            "play",
            extra={
                "play_id": outcome.play.play_id,
                "campaign_id": outcome.play.campaign_id,
                "won": outcome.play.won,
                "replayed": not outcome.created,
            },
        )
        return Response(201 if outcome.created else 200, answer(outcome.play, not outcome.created))

    return _guarded(run, deps)


def post_claim(
    headers: Mapping[str, str], play_id: str, raw: bytes, deps: PlaysDependencies
) -> Response:
    player = _player(headers, deps)
    if isinstance(player, Response):
        return player
    record, shopper_id = player
    retailer_id = record.retailer_id
    request = _body(raw, ClaimRequest)
    if isinstance(request, Response):
        return request
    assert isinstance(request, ClaimRequest)

    def run() -> Response:
        claimed = claim(
            deps.rewards,
            deps.vault,
            retailer_id,
            play_id,
            request.play_token,
            request.email,
            deps.clock(),
            shopper_id=shopper_id,
        )
        log.info("claim", extra={"play_id": claimed.play_id})  # never the address
        return Response(200, answer(claimed, True))

    return _guarded(run, deps)


def handle(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    deps: Callable[[], PlaysDependencies],
) -> Response:
    match = _CLAIM.match(path)
    if _PLAYS.match(path) or match:
        if method == "OPTIONS":
            return answer_preflight(headers, "POST", deps().api_keys)
        if method != "POST":
            return error(405, "method_not_allowed", "use POST", allow="POST")
        dependencies = deps()
        if match:
            answered = post_claim(headers, match.group(1), body, dependencies)
        else:
            answered = post_play(headers, body, dependencies)
        return readable_by_origin(answered, headers, dependencies.api_keys)
    if method == "GET" and path.rstrip("/") == "/openapi.json":
        return Response(200, openapi())
    return error(404, "not_found", f"no route {method} {path}")


REFUSALS = {
    "400": "invalid_json, invalid_request, invalid_token (not a play token), invalid_email",
    "401": "unauthenticated (missing or unknown X-Api-Key), shopper_signature_missing "
    "(a publishable key without X-Shopper-Signature)",
    "403": "forged_token (signature mismatch: forged or tampered), expired_token, "
    "wrong_retailer (the token is another retailer's), token_mismatch, "
    "token_not_for_shopper (a publishable key playing another shopper's token), "
    "shopper_signature_invalid, origin_not_allowed, secret_key_from_browser",
    "404": "not_found",
    "409": "order_already_played (another token played this order), campaign_not_playable, "
    "order_voided, not_a_win, voided, already_claimed",
    "413": "too_large",
    "503": "unavailable (Retry-After)",
}


def openapi() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (PlayRequest, ClaimRequest, PlayAnswer):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas |= schema.pop("$defs", {})
        schemas[model.__name__] = schema
    schemas["Error"] = ERROR_SCHEMA

    def refusals(*statuses: str) -> dict[str, Any]:
        return {status: error_response(REFUSALS[status]) for status in statuses}

    def outcome(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PlayAnswer"}}
            },
        }

    def body(name: str) -> dict[str, Any]:
        return {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }

    return {
        "openapi": "3.1.0",
        "info": {"title": "cartwise rewards game API", "version": "1.0.0"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/plays": {
                "post": {
                    "operationId": "play",
                    "summary": "Play the order a signed play token grants (one draw per order)",
                    "requestBody": body("PlayRequest"),
                    "responses": {
                        "201": outcome("The draw, made now"),
                        "200": outcome("The order was played before: its original outcome"),
                        **refusals("400", "401", "403", "409", "413", "503"),
                    },
                }
            },
            "/v1/plays/{play_id}/claim": {
                "post": {
                    "operationId": "claim",
                    "summary": "A winner gives the e-mail address to be paid at",
                    "parameters": [
                        {
                            "name": "play_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": body("ClaimRequest"),
                    "responses": {
                        "200": outcome("The claim is recorded"),
                        **refusals("400", "401", "403", "404", "409", "413", "503"),
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
