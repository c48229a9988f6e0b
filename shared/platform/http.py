"""What every cartwise HTTP API shares, independent of the web framework.

A ``Response`` (status, JSON body, headers); every refusal is ``error(...)``: a status and a
machine-readable body ``{"error": {"code", "message", ...}}``, described once in OpenAPI
(``ERROR_SCHEMA``, ``error_response``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RETRY_AFTER_UNAVAILABLE_S = 5


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    headers = {}
    if "retry_after_s" in extra:
        headers["Retry-After"] = str(max(1, math.ceil(extra["retry_after_s"])))
    return Response(status, {"error": {"code": code, "message": message, **extra}}, headers)


def load_json(body: bytes) -> Any:
    """``json.loads``; nesting too deep for the parser is a ``ValueError`` like any other
    malformed body (it raised ``RecursionError``, which answered 500)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("objects and arrays nest too deep") from None


def header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


ERROR_SCHEMA = {  # the body of every error answer of every cartwise HTTP API
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI response whose body is ``ERROR_SCHEMA`` (as ``components/schemas/Error``)."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
