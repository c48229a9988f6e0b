"""plays: the rewards game (HTTP, tracker-facing). Parse, call the service, answer."""

from __future__ import annotations

import functools
import json
from typing import Any

import flask
import functions_framework

from shared.rewards.api import MAX_BODY_BYTES, PlaysDependencies, handle


@functools.cache
def dependencies() -> PlaysDependencies:
    """Built once per instance, on first use: clients are reused across requests."""
    from shared.rewards import composition as rewards_composition

    built, api_keys = rewards_composition.plays()
    return PlaysDependencies(
        api_keys=api_keys,
        rewards=built.rewards,
        vault=built.vault,
        unavailable=rewards_composition.unavailable_errors(),
    )


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
