"""ingest_events: the Shopper Event API (HTTP). Parse, call the service, answer."""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from shared.ingestion.api import handle
from shared.ingestion.composition import ingest as dependencies
from shared.ingestion.service import MAX_REQUEST_BYTES


@functions_framework.http
def ingest_events(request: flask.Request) -> Any:
    # Read one byte past the limit at most: an oversized body is refused, never buffered.
    body = request.stream.read(MAX_REQUEST_BYTES + 1)
    response = handle(
        request.method,
        request.path,
        dict(request.headers),
        body,
        dependencies,
        request.args.to_dict(),
    )
    return flask.Response(
        json.dumps(response.body),
        status=response.status,
        headers=response.headers,
        mimetype="application/json",
    )
