"""An HTTP function for tests: answers what it was sent, with a counter of calls."""

from __future__ import annotations

import itertools
from typing import Any

import flask
import functions_framework

_calls = itertools.count(1)


@functions_framework.http
def echo(request: flask.Request) -> tuple[dict[str, Any], int]:
    call = next(_calls)
    body = request.get_json(silent=True) or {}
    fail_until = int(body.get("fail_until_call", 0))
    if call <= fail_until:
        return {"error": "asked to fail", "call": call}, int(body.get("fail_status", 503))
    return {"received": body, "call": call}, 200
