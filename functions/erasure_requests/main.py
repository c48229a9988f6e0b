"""erasure_requests: erasure requests and objections over HTTP. Parse, call, answer."""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from shared.privacy.api import MAX_BODY_BYTES, handle_erasure_api
from shared.privacy.composition import erasure_api as dependencies


@functions_framework.http
def erasure_requests(request: flask.Request) -> Any:
    body = request.stream.read(MAX_BODY_BYTES + 1)
    response = handle_erasure_api(
        request.method, request.path, dict(request.headers), body, dependencies
    )
    return flask.Response(
        json.dumps(response.body),
        status=response.status,
        headers=response.headers,
        mimetype="application/json",
    )
