"""The experiences API over HTTP: what a tracker shows a shopper now.

``GET /v1/shoppers/{shopper_id}/experiences`` with the retailer's ``X-Api-Key`` answers
the shopper's current experiences and the id of the event they answer. The retailer comes
from the key and is part of the lookup: a shopper of another retailer is a 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.contract.events import IDENTIFIER
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
from shared.retailers.keys import ApiKeyStore, authenticate

_ROUTE = re.compile(r"^/v1/shoppers/([^/]+)/experiences/?$")
_SHOPPER = re.compile(IDENTIFIER)


class CurrentExperiencesReader(Protocol):
    def current(self, retailer_id: str, shopper_id: str) -> CurrentExperiences | None: ...


@dataclass
class ExperiencesDependencies:
    api_keys: ApiKeyStore
    experiences: CurrentExperiencesReader


def get_experiences(
    headers: Mapping[str, str], shopper_id: str, deps: ExperiencesDependencies
) -> Response:
    retailer_id = authenticate(deps.api_keys, header(headers, "X-Api-Key"))
    if retailer_id is None:
        return error(401, "unauthenticated", "missing or unknown X-Api-Key")
    if not _SHOPPER.fullmatch(shopper_id):
        return error(400, "invalid_shopper_id", "not a customer identifier")
    try:
        current = deps.experiences.current(retailer_id, shopper_id)
    except StoreUnavailableError:
        return error(
            503,
            "unavailable",
            "a store is unavailable; retry",
            retry_after_s=RETRY_AFTER_UNAVAILABLE_S,
        )
    if current is None:
        return error(404, "not_found", "no experiences for this shopper yet")
    return Response(200, current.model_dump(mode="json"))


def handle(
    method: str,
    path: str,
    headers: Mapping[str, str],
    deps: Callable[[], ExperiencesDependencies],
) -> Response:
    match = _ROUTE.match(path)
    if match:
        if method != "GET":
            return error(405, "method_not_allowed", "use GET", allow="GET")
        return get_experiences(headers, match.group(1), deps())
    if method == "GET" and path.rstrip("/") == "/openapi.json":
        return Response(200, openapi())
    return error(404, "not_found", f"no route {method} {path}")


def openapi() -> dict[str, Any]:
    schema = CurrentExperiences.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})

    return {
        "openapi": "3.1.0",
        "info": {"title": "cartwise experiences API", "version": "1.0.0"},
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
            "/v1/shoppers/{shopper_id}/experiences": {
                "get": {
                    "operationId": "getExperiences",
                    "parameters": [
                        {
                            "name": "shopper_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": IDENTIFIER},
                        }
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
                        "400": error_response("Not a customer identifier"),
                        "401": error_response("Missing or unknown API key"),
                        "404": error_response("No experiences for this shopper of this retailer"),
                        "503": error_response("A store is unavailable (Retry-After)"),
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
