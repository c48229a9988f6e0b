"""Cloud Workflows (every ``workflows/*.workflows.yaml``) and Cloud Scheduler jobs.

A workflow reaches the system through user environment variables: each function's URL
under the name ``.local/stack.env`` gives it (``INGEST_URL`` ...), and
``CARTWISE_REGION``; it calls functions with OIDC and runs jobs as its own service
account, with only what its ``Workflow`` declaration grants.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from cartwise_infra import iam
from cartwise_infra.context import Context, cloud_name
from shared.platform.resource_model import Access, SchedulerJob, Workflow
from shared.system.workflow_render import CLOUD_RUN_API, RUN_API_VARIABLE

WORKFLOW_SUFFIX = ".workflows.yaml"
# Variables every workflow has (Cloud Workflows' own).
BUILTIN_ENV = frozenset(
    {
        "GOOGLE_CLOUD_PROJECT_ID",
        "GOOGLE_CLOUD_PROJECT_NUMBER",
        "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_CLOUD_WORKFLOW_ID",
        "GOOGLE_CLOUD_WORKFLOW_REVISION_ID",
        "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID",
    }
)
_ENV_REFERENCE = re.compile(r"""sys\.get_env\(\s*["']([A-Za-z0-9_]+)["']""")
_JOB_REFERENCE = re.compile(r"/jobs/([a-z][-a-z0-9]*)")
EXECUTIONS_API = "https://workflowexecutions.googleapis.com/v1"


# Cloud Scheduler waits at most 30 minutes for an HTTP target
# (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs,
# attemptDeadline); its default, 3 minutes, would retry a purge still running (30).
MAX_ATTEMPT_DEADLINE_S = 1800
WORKFLOW_START_DEADLINE_S = 60


def attempt_deadline(ctx: Context, function: str) -> str:
    """As long as the function may run, so that an attempt is never retried (and run
    twice at once) while it is still running."""
    declared = next(f for f in ctx.system.functions if f.name == function)
    return f"{min(declared.sizing.timeout_s, MAX_ATTEMPT_DEADLINE_S)}s"


def workflow_files(folder: Path) -> dict[str, Path]:
    """Workflow name -> its file (``nightly.workflows.yaml`` is workflow ``nightly``)."""
    return {
        path.name.removesuffix(WORKFLOW_SUFFIX): path
        for path in sorted(folder.glob(f"*{WORKFLOW_SUFFIX}"))
    }


def workflow_declarations(ctx: Context) -> dict[str, Workflow]:
    """Each file's declaration; a file without one gets no access and no schedule."""
    files = workflow_files(ctx.workflows_dir)
    declared = {w.name: w for w in ctx.system.workflows}
    missing = sorted(set(declared) - set(files))
    if missing:
        raise FileNotFoundError(f"declared workflows without a file in workflows/: {missing}")
    return {name: declared.get(name, Workflow(name=name)) for name in files}


@dataclass(frozen=True)
class References:
    env: frozenset[str]
    jobs: frozenset[str]


def references(source: str) -> References:
    """The environment variables a workflow reads and the Cloud Run jobs it names."""
    return References(
        env=frozenset(_ENV_REFERENCE.findall(source)),
        jobs=frozenset(_JOB_REFERENCE.findall(source)),
    )


def check_references(ctx: Context, declared: Workflow, source: str) -> None:
    """A workflow may only reach what exists and what its declaration grants it."""
    found = references(source)
    url_env = ctx.function_url_env()
    by_env = {variable: name for name, variable in url_env.items()}
    known_env = BUILTIN_ENV | {"CARTWISE_REGION", RUN_API_VARIABLE} | set(by_env)
    problems = [f"unknown variable {v}" for v in sorted(found.env - known_env)]
    for variable in sorted(found.env & set(by_env)):
        if by_env[variable] not in declared.access.invokes:
            problems.append(f"calls {by_env[variable]} ({variable}) without access.invokes")
    jobs = {cloud_name(j.name): j.name for j in ctx.system.jobs}
    problems += [f"unknown job {j}" for j in sorted(found.jobs - set(jobs))]
    for job in sorted(found.jobs & set(jobs)):
        if jobs[job] not in declared.access.runs_jobs:
            problems.append(f"runs job {jobs[job]} without access.runs_jobs")
    if problems:
        raise ValueError(f"workflow {declared.name}: " + "; ".join(problems))


def check_workflows(ctx: Context) -> None:
    """Every workflow file against what exists and what it is granted."""
    files = workflow_files(ctx.workflows_dir)
    for name, declared in workflow_declarations(ctx).items():
        check_references(ctx, declared, files[name].read_text())


def user_env_vars(ctx: Context) -> dict[str, pulumi.Input[str]]:
    env: dict[str, pulumi.Input[str]] = {
        "CARTWISE_REGION": ctx.region,
        RUN_API_VARIABLE: CLOUD_RUN_API,  # the jobs a workflow runs, their operations
    }
    for name, variable in ctx.function_url_env().items():
        env[variable] = ctx.functions[name].url
    return env


class CloudWorkflow(pulumi.ComponentResource):
    def __init__(self, ctx: Context, declared: Workflow, source: Path) -> None:
        super().__init__("cartwise:orchestration:CloudWorkflow", declared.name)
        key = f"workflow-{declared.name}"
        self.account = iam.service_account(
            ctx, key, "wf", declared.name, f"workflow {declared.name}", self
        )
        self.access: Access = declared.access
        text = source.read_text()
        self.workflow = gcp.workflows.Workflow(
            key,
            name=cloud_name(declared.name),
            project=ctx.project,
            region=ctx.region,
            description=declared.description or f"workflows/{source.name}",
            service_account=self.account.id,
            source_contents=text,
            user_env_vars=user_env_vars(ctx),
            call_log_level="LOG_ERRORS_ONLY",
            deletion_protection=ctx.stack.deletion_protection,
            opts=ctx.child(self),
        )
        ctx.workflows[declared.name] = self.workflow
        if declared.schedule:
            self.schedule(ctx, declared)
        self.register_outputs({})

    def schedule(self, ctx: Context, declared: Workflow) -> None:
        key = f"schedule-{declared.name}"
        starter = iam.service_account(
            ctx, key, "sch", declared.name, f"starts workflow {declared.name}", self
        )
        # Workflows grants invocation on the project only; this account can do nothing else.
        gcp.projects.IAMMember(
            f"{key}-starts-workflows",
            project=ctx.project,
            role=iam.WORKFLOWS_INVOKER,
            member=iam.member(starter),
            opts=ctx.child(self),
        )
        body = json.dumps({"argument": declared.argument}).encode()
        gcp.cloudscheduler.Job(
            key,
            name=cloud_name(f"{declared.name}-schedule"),
            project=ctx.project,
            region=ctx.region,
            schedule=declared.schedule,
            time_zone=declared.time_zone,
            retry_config=gcp.cloudscheduler.JobRetryConfigArgs(retry_count=1),
            # Starting an execution returns at once; the run itself is the workflow's.
            attempt_deadline=f"{WORKFLOW_START_DEADLINE_S}s",
            http_target=gcp.cloudscheduler.JobHttpTargetArgs(
                uri=pulumi.Output.concat(EXECUTIONS_API, "/", self.workflow.id, "/executions"),
                http_method="POST",
                body=base64.b64encode(body).decode(),
                headers={"Content-Type": "application/json"},
                oauth_token=gcp.cloudscheduler.JobHttpTargetOauthTokenArgs(
                    service_account_email=starter.email,
                    scope="https://www.googleapis.com/auth/cloud-platform",
                ),
            ),
            opts=ctx.child(self),
        )


class ScheduledCall(pulumi.ComponentResource):
    """A Cloud Scheduler job calling an HTTP function with an OIDC token of its own."""

    def __init__(self, ctx: Context, declared: SchedulerJob) -> None:
        super().__init__("cartwise:orchestration:ScheduledCall", declared.name)
        key = f"schedule-{declared.name}"
        caller = iam.service_account(
            ctx, key, "sch", declared.name, f"scheduler job {declared.name}", self
        )
        function = declared.function
        if function is None:  # a workflow is scheduled by its own ``Workflow.schedule``
            raise ValueError(f"scheduler job {declared.name}: targets no function")
        iam.invoker(ctx, key, function, iam.member(caller), self)
        target = ctx.functions[function]
        gcp.cloudscheduler.Job(
            key,
            name=cloud_name(declared.name),
            project=ctx.project,
            region=ctx.region,
            schedule=declared.schedule,
            time_zone=declared.time_zone,
            retry_config=gcp.cloudscheduler.JobRetryConfigArgs(retry_count=1),
            attempt_deadline=attempt_deadline(ctx, function),
            http_target=gcp.cloudscheduler.JobHttpTargetArgs(
                uri=pulumi.Output.concat(target.url, declared.path),
                http_method=declared.method,
                body=(
                    base64.b64encode(declared.body.encode()).decode()
                    if declared.method == "POST"
                    else None
                ),
                headers={"Content-Type": "application/json"},
                oidc_token=gcp.cloudscheduler.JobHttpTargetOidcTokenArgs(
                    service_account_email=caller.email, audience=target.url
                ),
            ),
            opts=ctx.child(self),
        )
        self.register_outputs({})
