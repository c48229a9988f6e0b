"""What a workflow is deployed with, the same locally and in the cloud (docs/NIGHTLY.md).

A workflow file (``workflows/<name>.workflows.yaml``) is deployed as it is: the workflows
emulator serves it and the Pulumi program uploads it unchanged. What differs between the
two places is given to it as *user environment variables* (``sys.get_env``): each
function it calls, by URL (``CARTWISE_<FUNCTION>_URL``). ``render`` reads the file,
checks that it can run in both places, and returns its source and those variables:

- the local stack passes them to the emulator's process environment (``emulators.stack``);
- the Pulumi program passes them as ``gcp.workflows.Workflow(user_env_vars=...)`` with
  the Cloud Run URLs, and ``source_contents=source``.

The checks (``problems``) are what the emulator and the cloud both accept: every HTTP call
carries OIDC auth (the functions are private; the emulator ignores it), or OAuth2 for the
Cloud Run Admin API (``CARTWISE_RUN_API_URL``: jobs run and their operations polled;
locally the emulator's job stand-in, which ignores it too), sits in a ``try``
with an explicit ``retry`` whose predicate is a subworkflow with the parameter ``e``, a
literal integer ``max_retries`` and an integer backoff ``multiplier`` (what the emulator
can run); no ``googleapis.*`` connector (the emulator calls the real APIs); every
environment variable read is either given here or one the platform sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.platform.resource_model import SystemResources, Workflow

WORKFLOWS_DIR = Path(__file__).resolve().parents[2] / "workflows"
_GET_ENV = re.compile(r"""sys\.get_env\(\s*["']([A-Za-z0-9_]+)["']""")
_PLATFORM_ENV = re.compile(r"^GOOGLE_CLOUD_[A-Z_]+$")
# The Cloud Run Admin API (jobs run, operations polled): given to a workflow that runs jobs.
RUN_API_VARIABLE = "CARTWISE_RUN_API_URL"
CLOUD_RUN_API = "https://run.googleapis.com/v2"


class WorkflowRenderError(ValueError):
    pass


@dataclass(frozen=True)
class RenderedWorkflow:
    name: str
    source: str  # the file's text, unchanged
    env: dict[str, str]  # user environment variables


def url_variable(function: str) -> str:
    return f"CARTWISE_{function.upper()}_URL"


def source_path(name: str, directory: Path = WORKFLOWS_DIR) -> Path:
    return directory / f"{name}.workflows.yaml"


def render(
    workflow: Workflow,
    function_urls: Mapping[str, str],
    directory: Path = WORKFLOWS_DIR,
    run_api: str = CLOUD_RUN_API,
) -> RenderedWorkflow:
    """The workflow's source and user environment variables; refuses a workflow that
    could not run in both places, or a called function without a URL. A workflow that
    runs Cloud Run jobs gets the Admin API's root, ``run_api`` (locally: the workflows
    emulator's job stand-in)."""
    missing = [f for f in workflow.calls if f not in function_urls]
    if missing:
        raise WorkflowRenderError(f"{workflow.name}: no URL for {', '.join(missing)}")
    env = {url_variable(f): function_urls[f].rstrip("/") for f in workflow.calls}
    if workflow.access.runs_jobs:
        env[RUN_API_VARIABLE] = run_api.rstrip("/")
    source = source_path(workflow.name, directory).read_text()
    found = problems(source, env)
    if found:
        raise WorkflowRenderError(f"{workflow.name}: " + "; ".join(found))
    return RenderedWorkflow(name=workflow.name, source=source, env=env)


def render_all(
    system: SystemResources,
    function_urls: Mapping[str, str],
    directory: Path = WORKFLOWS_DIR,
    run_api: str = CLOUD_RUN_API,
) -> list[RenderedWorkflow]:
    return [render(w, function_urls, directory, run_api) for w in system.workflows]


def environment(
    system: SystemResources,
    function_urls: Mapping[str, str],
    directory: Path = WORKFLOWS_DIR,
    run_api: str = CLOUD_RUN_API,
) -> dict[str, str]:
    """Every workflow's variables together (the emulator serves them all in one process)."""
    merged: dict[str, str] = {}
    for rendered in render_all(system, function_urls, directory, run_api):
        merged |= rendered.env
    return merged


# --- checks -------------------------------------------------------------------------------


def _steps(steps: Any, where: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Every step body (with its path, and whether it is the body of a try with retry)."""
    if not isinstance(steps, list):
        return
    for item in steps:
        if not isinstance(item, dict):
            continue
        for name, body in item.items():
            yield from _step(body, f"{where}.{name}", retried=False)


def _step(body: Any, where: str, retried: bool) -> Iterator[tuple[str, dict[str, Any], bool]]:
    if not isinstance(body, dict):
        return
    yield where, body, retried
    if "try" in body:
        inner = body["try"]
        has_retry = "retry" in body
        if isinstance(inner, dict) and "steps" in inner:
            for path, step, _ in _steps(inner["steps"], f"{where}.try"):
                yield path, step, has_retry
        else:
            yield from _step(inner, f"{where}.try", has_retry)
        if isinstance(body.get("except"), dict):
            yield from _steps(body["except"].get("steps"), f"{where}.except")
    if "steps" in body:
        yield from _steps(body["steps"], where)
    if "for" in body and isinstance(body["for"], dict):
        yield from _steps(body["for"].get("steps"), f"{where}.for")
    if "parallel" in body and isinstance(body["parallel"], dict):
        for branch in body["parallel"].get("branches", []) or []:
            if isinstance(branch, dict):
                for name, inner in branch.items():
                    yield from _step(inner, f"{where}.{name}", retried)
    for case in body.get("switch", []) or []:
        if isinstance(case, dict) and "steps" in case:
            yield from _steps(case["steps"], f"{where}.switch")


def _retry_problems(where: str, retry: Any, subworkflows: Mapping[str, Any]) -> list[str]:
    if not isinstance(retry, dict):
        return [f"{where}: retry must be an explicit policy (a map)"]
    found = []
    predicate = str(retry.get("predicate", ""))
    match = re.fullmatch(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}", predicate)
    if not match:
        found.append(f"{where}: retry needs a predicate subworkflow (${{name}})")
    elif match.group(1) not in subworkflows:
        found.append(f"{where}: predicate {match.group(1)} is not a subworkflow of the file")
    elif (subworkflows[match.group(1)] or {}).get("params") != ["e"]:
        found.append(f"{where}: predicate {match.group(1)} must take one parameter named e")
    if type(retry.get("max_retries")) is not int:
        found.append(f"{where}: max_retries must be a literal integer")
    backoff = retry.get("backoff")
    if not isinstance(backoff, dict) or type(backoff.get("multiplier")) is not int:
        found.append(f"{where}: backoff.multiplier must be an integer")
    return found


def problems(source: str, env: Mapping[str, str]) -> list[str]:
    """What would keep the workflow from running the same way locally and in the cloud."""
    try:
        document = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        return [f"not YAML: {exc}"]
    if not isinstance(document, dict) or "main" not in document:
        return ["a workflow file is a map of subworkflows with a main"]
    found: list[str] = []
    for variable in sorted(set(_GET_ENV.findall(source))):
        if variable not in env and not _PLATFORM_ENV.match(variable):
            found.append(f"reads {variable}, which the deployment does not set")
    for name, subworkflow in document.items():
        if not isinstance(subworkflow, dict):
            found.append(f"{name}: not a subworkflow")
            continue
        for where, body, retried in _steps(subworkflow.get("steps"), name):
            call = body.get("call")
            if isinstance(call, str) and call.startswith("googleapis."):
                found.append(f"{where}: {call} (connectors call the real APIs locally)")
            if isinstance(body.get("retry"), str | dict) and "try" in body:
                found += _retry_problems(where, body["retry"], document)
            if not (isinstance(call, str) and call.startswith("http.")):
                continue
            args = body.get("args") or {}
            auth = args.get("auth")
            # A Google API (the Cloud Run Admin API) takes an OAuth2 token, a function OIDC.
            wanted = "OAuth2" if RUN_API_VARIABLE in str(args.get("url", "")) else "OIDC"
            if not isinstance(auth, dict) or auth.get("type") != wanted:
                found.append(f"{where}: {call} without auth: {{type: {wanted}}}")
            if not retried:
                found.append(f"{where}: {call} outside a try with an explicit retry")
    return found
