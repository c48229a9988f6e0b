"""A scripted stand-in for nightly_steps, to drive the workflow's control flow in tests.

The run id says what to do: ``gate-...`` -> evaluate answers ``gate_passed: false``;
``flaky-<step>-...`` -> that step answers 503 once, then succeeds; ``broken-<step>-...`` ->
that step answers 500. Step ``shards`` is called by each task of the scripted job
(``shard.py``), once per attempt. ``GET /calls/{run_id}`` lists the calls received for a run.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import flask
import functions_framework

_lock = threading.Lock()
_calls: dict[str, list[str]] = defaultdict(list)


@functions_framework.http
def scripted_nightly_steps(request: flask.Request) -> tuple[dict[str, Any], int]:
    path = request.path
    if request.method == "GET" and path.startswith("/calls/"):
        with _lock:
            return {"calls": _calls[path.removeprefix("/calls/")]}, 200
    body = request.get_json(silent=True) or {}
    if path == "/runs":
        run_id = body.get("run_id") or "unnamed"
        with _lock:
            _calls[run_id].append("begin")
        tasks = body.get("tasks") or 1
        return {"run_id": run_id, "cutoff": "2026-11-22", "started_at": "x", "tasks": tasks}, 200
    if path.startswith("/runs/") and path.endswith("/finish"):
        run_id = path.split("/")[2]
        with _lock:
            _calls[run_id].append(f"finish:{body.get('outcome')}")
        return {"run_id": run_id, "status": body.get("outcome")}, 200
    step = path.removeprefix("/steps/")
    run_id = body["run_id"]
    with _lock:
        _calls[run_id].append(step)
        seen = _calls[run_id].count(step)
    if run_id.startswith(f"flaky-{step}-") and seen == 1:
        return {"error": {"code": "unavailable", "message": "later"}}, 503
    if run_id.startswith(f"broken-{step}-"):
        return {"error": {"code": "step_failed", "message": "scripted failure"}}, 500
    summary: dict[str, Any] = {"step": step, "run_id": run_id}
    if step == "evaluate":
        summary |= {"gate_passed": not run_id.startswith("gate-"), "table": []}
    return summary, 200
