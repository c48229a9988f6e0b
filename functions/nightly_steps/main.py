"""nightly_steps: the nightly workflow's steps over HTTP. Parse, call, answer."""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from shared.nightly.composition import nightly_steps as dependencies
from shared.nightly.steps_api import MAX_BODY_BYTES, handle


@functions_framework.http
def nightly_steps(request: flask.Request) -> Any:
    # Read one byte past the limit at most: an oversized body is refused, never buffered.
    body = request.stream.read(MAX_BODY_BYTES + 1)
    response = handle(request.method, request.path, body, dependencies)
    return flask.Response(
        json.dumps(response.body),
        status=response.status,
        headers=response.headers,
        mimetype="application/json",
    )
