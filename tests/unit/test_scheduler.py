from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from emulators.scheduler import fire, next_fire_times
from shared.system.resources import SchedulerJob

JOB = SchedulerJob(
    name="purge",
    schedule="30 2 * * *",
    time_zone="Europe/Paris",
    function="purge",
    path="/v1/purge",
    body='{"dry_run": false}',
)


def test_next_fire_time_follows_the_job_time_zone() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    due = next_fire_times([JOB], now)["purge"]
    assert due.astimezone(UTC) == datetime(2026, 11, 24, 1, 30, tzinfo=UTC)  # 02:30 CET


def test_fire_posts_the_job_body_to_its_target() -> None:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(
                {
                    "path": self.path,
                    "body": json.loads(self.rfile.read(length)),
                    "job": self.headers["X-CloudScheduler-JobName"],
                }
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status = fire(f"http://127.0.0.1:{server.server_port}/v1/purge", JOB, timeout_s=5)
    finally:
        server.shutdown()
    assert status == 204
    assert received == [{"path": "/v1/purge", "body": {"dry_run": False}, "job": "purge"}]


def test_a_workflow_job_starts_an_execution_with_its_body_as_argument() -> None:
    from emulators.config import StackSettings
    from emulators.scheduler import job_body, job_url
    from shared.system.resources import SYSTEM

    job = next(j for j in SYSTEM.schedules() if j.name == "nightly-schedule")
    settings = StackSettings()
    assert job_url(settings, SYSTEM, job) == (
        f"http://{settings.host}:{settings.workflows_port}/v1/projects/{settings.project}"
        "/locations/europe-west1/workflows/nightly/executions"
    )
    body = job_body(job)
    assert body is not None and json.loads(json.loads(body)["argument"]) == {}


def test_a_job_targets_one_function_or_one_workflow() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SchedulerJob(name="x", schedule="* * * * *")
    with pytest.raises(ValidationError):
        SchedulerJob(name="x", schedule="* * * * *", function="f", workflow="w")
