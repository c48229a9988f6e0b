"""plays: the rewards game (HTTP, tracker-facing). Parse, call the service, answer."""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from shared.rewards.api import MAX_BODY_BYTES, handle
from shared.rewards.composition import plays as dependencies


@functions_framework.http
def plays(request: flask.Request) -> Any:
    body = request.stream.read(MAX_BODY_BYTES + 1)
    response = handle(request.method, request.path, dict(request.headers), body, dependencies)
    return flask.Response(
        json.dumps(response.body),
        status=response.status,
        headers=response.headers,
        mimetype="application/json",
    )
