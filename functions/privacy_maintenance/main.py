"""privacy_maintenance: the retention purge and the erasure sweep (Cloud Scheduler)."""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from shared.privacy.api import handle_maintenance
from shared.privacy.composition import privacy_maintenance as dependencies


@functions_framework.http
def privacy_maintenance(request: flask.Request) -> Any:
    response = handle_maintenance(request.method, request.path, dependencies)
    return flask.Response(
        json.dumps(response.body),
        status=response.status,
        headers=response.headers,
        mimetype="application/json",
    )
