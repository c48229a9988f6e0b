"""The nightly workflow file is deployable as it is: checked, and given its function URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.system.resources import SYSTEM, Workflow
from shared.system.workflow_render import (
    WorkflowRenderError,
    environment,
    problems,
    render,
    url_variable,
)

URLS = {f.name: f"https://{f.name.replace('_', '-')}-abc.a.run.app/" for f in SYSTEM.functions}


def test_the_nightly_workflow_renders_unchanged_with_its_steps_url() -> None:
    rendered = render(SYSTEM.workflows[0], URLS)
    assert rendered.name == "nightly"
    assert rendered.env == {
        "CARTWISE_NIGHTLY_STEPS_URL": "https://nightly-steps-abc.a.run.app",  # no trailing /
        "CARTWISE_RUN_API_URL": "https://run.googleapis.com/v2",  # it runs nightly-shards
    }
    path = Path(__file__).parents[2] / "workflows" / "nightly.workflows.yaml"
    assert rendered.source == path.read_text()  # deployed byte for byte
    assert environment(SYSTEM, URLS) == rendered.env
    assert url_variable("nightly_steps") in rendered.source


def test_a_called_function_without_url_is_refused() -> None:
    with pytest.raises(WorkflowRenderError, match="no URL for nightly_steps"):
        render(SYSTEM.workflows[0], {})


GOOD = """
main:
  steps:
    - call:
        try:
          call: http.post
          args:
            url: ${sys.get_env("CARTWISE_F_URL") + "/x"}
            auth: {type: OIDC}
          result: r
        retry:
          predicate: ${transient}
          max_retries: 3
          backoff: {initial_delay: 1, max_delay: 30, multiplier: 2}
    - done:
        return: ${sys.get_env("GOOGLE_CLOUD_PROJECT_ID")}
transient:
  params: [e]
  steps:
    - no:
        return: false
"""


def test_a_workflow_that_runs_in_both_places_has_no_problems() -> None:
    assert problems(GOOD, {"CARTWISE_F_URL": "http://x"}) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.replace("auth: {type: OIDC}", "auth: {type: OAuth2}"), "without auth"),
        (lambda s: s.replace("max_retries: 3", "max_retries: ${n}"), "literal integer"),
        (lambda s: s.replace("multiplier: 2", "multiplier: 1.5"), "multiplier"),
        (lambda s: s.replace("params: [e]", "params: [error]"), "parameter named e"),
        (lambda s: s.replace("${transient}", "${http.default_retry_predicate}"), "predicate"),
        (lambda s: s.replace("call: http.post", "call: googleapis.run.v1.x"), "connectors"),
        (lambda s: s.replace("CARTWISE_F_URL", "CARTWISE_G_URL"), "CARTWISE_G_URL"),
    ],
)
def test_what_would_differ_between_emulator_and_cloud_is_refused(
    change: object, expected: str
) -> None:
    found = problems(change(GOOD), {"CARTWISE_F_URL": "http://x"})  # type: ignore[operator]
    assert any(expected in p for p in found), found


def test_an_http_call_outside_a_retry_is_refused() -> None:
    document = yaml.safe_load(GOOD)
    call = document["main"]["steps"][0]["call"]
    document["main"]["steps"][0]["call"] = call["try"]
    found = problems(yaml.safe_dump(document), {"CARTWISE_F_URL": "http://x"})
    assert any("outside a try" in p for p in found), found


def test_every_step_call_of_the_nightly_workflow_goes_through_the_retried_post() -> None:
    document = yaml.safe_load(render(SYSTEM.workflows[0], URLS).source)
    http_calls = [
        (name, step)
        for name, sub in document.items()
        for item in sub["steps"]
        for step in item.values()
        if "try" in step and str(step["try"].get("call", "")).startswith("http.")
    ]
    assert [name for name, _ in http_calls] == ["shard_job", "shard_job", "post"]
    assert http_calls[2][1]["try"]["args"]["auth"] == {"type": "OIDC", "audience": "${base}"}
    # The shard job's run and its operation: the Cloud Run Admin API, with OAuth2.
    for _, step in http_calls[:2]:
        assert step["try"]["args"]["auth"] == {"type": "OAuth2"}
        assert "CARTWISE_RUN_API_URL" in step["try"]["args"]["url"]
    assert Workflow(name="nightly").name in {w.name for w in SYSTEM.workflows}
