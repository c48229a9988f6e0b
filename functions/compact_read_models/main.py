"""compact_read_models: landing rows into the read models, exactly once (Cloud Scheduler,
every minute; docs/FREEZER.md). Answers the run's counts as JSON."""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from shared.freezer.composition import compact_now
from shared.platform.sinks import TransientSinkError


@functions_framework.http
def compact_read_models(request: flask.Request) -> Any:
    if request.method != "POST":  # a probe (the local stack's health check): no run
        return flask.Response(json.dumps({"ok": True}), status=200, mimetype="application/json")
    try:
        body = compact_now()
    except TransientSinkError as exc:
        # Nothing is lost: the watermarks did not move; the next run does the slice again.
        return flask.Response(
            json.dumps({"error": str(exc)}), status=503, mimetype="application/json"
        )
    return flask.Response(json.dumps(body), status=200, mimetype="application/json")
