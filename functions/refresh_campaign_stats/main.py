"""refresh_campaign_stats: every campaign's figures for the back office's portfolio (Cloud
Scheduler, every 5 minutes; docs/CAMPAIGNS.md, "The portfolio"). Answers the counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import flask
import functions_framework

from shared.campaigns.composition import refresh_stats
from shared.campaigns.stats import openapi
from shared.platform.errors import StoreUnavailableError


@functions_framework.http
def refresh_campaign_stats(request: flask.Request) -> Any:
    if request.path.rstrip("/") == "/openapi.json":
        return flask.Response(json.dumps(openapi()), status=200, mimetype="application/json")
    if request.method != "POST":  # a probe (the local stack's health check): no run
        return flask.Response(json.dumps({"ok": True}), status=200, mimetype="application/json")
    try:
        body = refresh_stats(datetime.now(UTC))
    except StoreUnavailableError as exc:  # the next run computes them again
        return flask.Response(
            json.dumps({"error": str(exc)}), status=503, mimetype="application/json"
        )
    return flask.Response(json.dumps(body), status=200, mimetype="application/json")
