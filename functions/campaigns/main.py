"""campaigns: the CSMs' campaigns API, back office and reports (HTTP). Parse, call, answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask
import functions_framework

from shared.campaigns.api import HttpRequest, handle
from shared.campaigns.composition import campaigns as dependencies

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


@functions_framework.http
def campaigns(request: flask.Request) -> Any:
    is_form = request.mimetype in _FORMS
    response = handle(
        HttpRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            body=b"" if is_form else request.get_data(),
            form=request.form.to_dict() if is_form else {},
            cookies=request.cookies.to_dict(),
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
