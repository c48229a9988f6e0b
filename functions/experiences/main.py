"""experiences: what a tracker shows a shopper now (HTTP). Parse, call, answer."""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from shared.decisions.composition import experiences as dependencies
from shared.decisions.experiences_api import handle


@functions_framework.http
def experiences(request: flask.Request) -> Any:
    response = handle(
        request.method, request.path, dict(request.headers), request.args.to_dict(), dependencies
    )
    return flask.Response(
        json.dumps(response.body),
        status=response.status,
        headers=response.headers,
        mimetype="application/json",
    )
