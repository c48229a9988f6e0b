"""campaigns: the CSMs' campaigns API, back office and reports (HTTP). Parse, call, answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import flask
import functions_framework

from shared.campaigns.api import MAX_BODY_BYTES, HttpRequest, handle
from shared.campaigns.composition import campaigns as dependencies

_FORM = "application/x-www-form-urlencoded"  # the back office's forms post nothing else
_DRAIN_CHUNK = 64 * 1024


def _too_large() -> flask.Response:
    body = {"error": {"code": "too_large", "message": f"the body exceeds {MAX_BODY_BYTES} bytes"}}
    return flask.Response(json.dumps(body), status=413, mimetype="application/json")


def _drain(request: flask.Request) -> None:
    """Read what is left of the body in chunks and drop it: functions-framework reads the whole
    body after every answer (``get_data``), which would otherwise buffer it in memory."""
    while request.stream.read(_DRAIN_CHUNK):
        pass


@functions_framework.http
def campaigns(request: flask.Request) -> Any:
    # Read one byte past the limit at most: an oversized body is refused, never buffered.
    if (request.content_length or 0) > MAX_BODY_BYTES:
        _drain(request)
        return _too_large()
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        _drain(request)
        return _too_large()
    is_form = request.mimetype == _FORM
    form: dict[str, str] = {}
    form_lists: dict[str, list[str]] = {}
    if is_form:  # ``form``: the first value of a repeated field; ``form_lists``: all
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            form.setdefault(name, value)
            form_lists.setdefault(name, []).append(value)
    response = handle(
        HttpRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            body=b"" if is_form else body,
            form=form,
            cookies=request.cookies.to_dict(),
            remote_addr=request.remote_addr or "",
            query=request.args.to_dict(),
            form_lists=form_lists,
        ),
        dependencies,
        datetime.now(UTC),
    )
    return flask.Response(
        response.body,
        status=response.status,
        headers=response.headers,
        content_type=response.content_type,
    )
