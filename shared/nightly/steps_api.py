"""The nightly step service over HTTP, as the workflow calls it.

- ``POST /runs`` ``{run_id?, cutoff?, tasks?}`` -> ``{run_id, cutoff, started_at, tasks}``
- ``POST /steps/{name}`` ``{run_id}`` -> the step's summary
- ``POST /runs/{run_id}/finish`` ``{outcome, summary?}`` -> the run's record
- ``GET /runs/{run_id}`` -> the run's record (progress); ``GET /runs/current``
- ``GET /openapi.json``

Errors are ``{"error": {"code", "message"}}``: 400 bad request, 404 unknown run or step,
409 nothing to compile / not compiled, 501 a model step absent from this build, 503 a
store did not answer (``Retry-After``; the workflow retries), 500 a step failed.
Not public: in the cloud only the workflow's service account may invoke it (OIDC).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import date
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.nightly.runs import RUN_ID, RunRecord
from shared.nightly.service import (
    STEP_NAMES,
    NightlyDependencies,
    NightlyError,
    TransientError,
    begin_run,
    current_run,
    finish_run,
    get_run,
    run_step,
)
from shared.nightly.shards import BUCKETS
from shared.platform.http import ERROR_SCHEMA, Response, error, error_response

log = logging.getLogger(__name__)
_M = TypeVar("_M", bound=BaseModel)

RETRY_AFTER_S = 5
_STEP = re.compile(r"^/steps/([a-z_]+)/?$")
_RUN = re.compile(r"^/runs/([^/]+)/?$")
_FINISH = re.compile(r"^/runs/([^/]+)/finish/?$")


class BeginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(default=None, pattern=RUN_ID)
    cutoff: date | None = None
    # The shard job's task count: at most one task a shard bucket (shards.BUCKETS).
    tasks: int | None = Field(default=None, ge=1, le=BUCKETS)


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the workflow also sends the cut-off

    run_id: str = Field(pattern=RUN_ID)


class FinishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["published", "refused_by_gate", "failed"]
    summary: dict[str, Any] | None = None


def _parse(model: type[_M], body: bytes) -> _M | Response:
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        return error(
            400,
            "invalid_request",
            "the body does not match the schema",
            reasons=json.loads(exc.json(include_url=False, include_context=False)),
        )


def _call(action: Callable[[], dict[str, Any] | None]) -> Response:
    try:
        body = action()
    except NightlyError as exc:
        return error(exc.status, exc.code, str(exc))
    except TransientError as exc:
        log.warning("nightly step: store unavailable", extra={"error": str(exc)})
        return error(503, "unavailable", str(exc)[:500], retry_after_s=RETRY_AFTER_S)
    except Exception as exc:
        log.exception("nightly step failed")
        return error(500, "step_failed", f"{type(exc).__name__}: {exc}"[:2000])
    if body is None:
        return error(404, "not_found", "no run published yet")
    return Response(200, body)


MAX_BODY_BYTES = 64 * 1024  # a step's request is a run id and a few options


def handle(
    method: str, path: str, body: bytes, deps: Callable[[], NightlyDependencies]
) -> Response:
    if len(body) > MAX_BODY_BYTES:
        return error(413, "request_too_large", f"a request carries at most {MAX_BODY_BYTES} bytes")
    if method == "GET" and path.rstrip("/") == "/openapi.json":
        return Response(200, openapi())
    if path.rstrip("/") == "/runs":
        if method != "POST":
            return error(405, "method_not_allowed", "use POST", allow="POST")
        begin = _parse(BeginRequest, body)
        if isinstance(begin, Response):
            return begin
        return _call(lambda: begin_run(deps(), begin.run_id, begin.cutoff, begin.tasks))
    if match := _STEP.match(path):
        if method != "POST":
            return error(405, "method_not_allowed", "use POST", allow="POST")
        name = match.group(1)
        if name not in STEP_NAMES:
            return error(404, "unknown_step", f"steps: {', '.join(STEP_NAMES)}")
        step = _parse(StepRequest, body)
        if isinstance(step, Response):
            return step
        return _call(lambda: run_step(deps(), name, step.run_id))
    if match := _FINISH.match(path):
        if method != "POST":
            return error(405, "method_not_allowed", "use POST", allow="POST")
        finish = _parse(FinishRequest, body)
        if isinstance(finish, Response):
            return finish
        run_id = match.group(1)
        return _call(lambda: finish_run(deps(), run_id, finish.outcome, finish.summary))
    if match := _RUN.match(path):
        if method != "GET":
            return error(405, "method_not_allowed", "use GET", allow="GET")
        if match.group(1) == "current":
            return _call(lambda: current_run(deps()))
        return _call(lambda: get_run(deps(), match.group(1)))
    return error(404, "not_found", f"no route {method} {path}")


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


def openapi() -> dict[str, Any]:

    def json_body(ref: str) -> dict[str, Any]:
        return {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }

    summary = {
        "description": "The step's JSON summary (with step, run_id and seconds)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    record = {
        "description": "The run's record",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunRecord"}}},
    }
    run_id = {
        "name": "run_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": RUN_ID},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "cartwise nightly steps", "version": "1.0.0"},
        "components": {
            "schemas": {
                "BeginRequest": _schema(BeginRequest),
                "StepRequest": _schema(StepRequest),
                "FinishRequest": _schema(FinishRequest),
                "RunRecord": _schema(RunRecord),
                "Error": ERROR_SCHEMA,
            },
            "securitySchemes": {"oidc": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"oidc": []}],
        "paths": {
            "/runs": {
                "post": {
                    "operationId": "beginRun",
                    "requestBody": json_body("BeginRequest"),
                    "responses": {
                        "200": {"description": "{run_id, cutoff, started_at, tasks}"},
                        "400": error_response("Invalid body, or another cut-off for this run"),
                        "503": error_response("A store is unavailable (Retry-After)"),
                    },
                }
            },
            "/steps/{name}": {
                "post": {
                    "operationId": "runStep",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(STEP_NAMES)},
                        }
                    ],
                    "requestBody": json_body("StepRequest"),
                    "responses": {
                        "200": summary,
                        "400": error_response("Invalid body"),
                        "404": error_response("Unknown step or run"),
                        "409": error_response(
                            "No scores to compile, or nothing compiled to publish"
                        ),
                        "500": error_response("The step failed (not retried)"),
                        "501": error_response("The model steps are not part of this build"),
                        "503": error_response("A store is unavailable (Retry-After; retried)"),
                    },
                }
            },
            "/runs/{run_id}/finish": {
                "post": {
                    "operationId": "finishRun",
                    "parameters": [run_id],
                    "requestBody": json_body("FinishRequest"),
                    "responses": {
                        "200": record,
                        "400": error_response("Invalid body"),
                        "404": error_response("Unknown run"),
                        "409": error_response("Finished as published but never published"),
                    },
                }
            },
            "/runs/{run_id}": {
                "get": {
                    "operationId": "getRun",
                    "description": "A run's record; `current` names the live (published) run",
                    "parameters": [run_id],
                    "responses": {"200": record, "404": error_response("Unknown run")},
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "security": [],
                    "responses": {"200": {"description": "This document"}},
                }
            },
        },
    }
