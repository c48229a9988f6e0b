"""A workflow runs on the workflows emulator and calls a local function, with retries."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.config import StackSettings
from tests.integration.serving import serve_function, serve_workflows

pytestmark = pytest.mark.integration

WORKFLOWS = Path(__file__).parent / "workflows"


@pytest.fixture(scope="module")
def workflows_url(stack: dict[str, str]) -> Iterator[str]:
    """A workflows emulator serving the test workflows (the stack's serves workflows/)."""
    with serve_workflows(WORKFLOWS) as url:
        yield url


def execute(base: str, project: str, workflow: str, argument: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{base}/v1/projects/{project}/locations/europe-west1/workflows/{workflow}/executions",
        data=json.dumps({"argument": json.dumps(argument)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_workflow_calls_a_local_function_and_retries_on_503(
    stack: dict[str, str], stack_settings: StackSettings, workflows_url: str
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    with serve_function(stack_settings, "echo", "echo", "http") as function_url:
        status, result = execute(
            workflows_url,
            project,
            "call_function",
            {"url": function_url, "payload": {"fail_until_call": 2, "week": 45}},
        )
    assert status == 200, result
    assert result["status"] == 200
    assert result["body"]["received"] == {"fail_until_call": 2, "week": 45}
    assert result["body"]["call"] == 3  # two 503s retried, the third call answered
    assert result["project"] == project


def test_workflow_does_not_retry_what_the_predicate_refuses(
    stack: dict[str, str], stack_settings: StackSettings, workflows_url: str
) -> None:
    with serve_function(stack_settings, "echo", "echo", "http") as function_url:
        status, result = execute(
            workflows_url,
            stack["GOOGLE_CLOUD_PROJECT"],
            "call_function",
            {"url": function_url, "payload": {"fail_until_call": 100, "fail_status": 400}},
        )
    assert status == 500
    assert result["error"]["code"] == 400
    assert "HttpError" in result["error"]["tags"]
    assert result["error"]["body"]["call"] == 1  # refused by the predicate: no retry
