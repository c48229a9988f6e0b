"""The whole system from its declaration: ``deploy(SYSTEM, stack, ...)``.

Nothing here lists resources: every topic, table, function, worker, job, workflow and
schedule comes from ``shared.system.resources.SYSTEM`` and the files in ``workflows/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from cartwise_infra import iam
from cartwise_infra.apis import ApiEnablement
from cartwise_infra.autoscaling import BacklogAutoscaler, scaled_workers
from cartwise_infra.compute import CloudFunction, CloudRunJob, PullWorker, RuntimeImage, Sources
from cartwise_infra.config import StackConfig
from cartwise_infra.context import Context
from cartwise_infra.data import BigtableStore, Buckets, DocumentStores, Secrets, Warehouse
from cartwise_infra.frontdoor import FrontDoor, behind_load_balancer
from cartwise_infra.messaging import Messaging, check_dead_letters
from cartwise_infra.operations import Operations
from cartwise_infra.orchestration import (
    CloudWorkflow,
    ScheduledCall,
    check_workflows,
    workflow_declarations,
    workflow_files,
)
from cartwise_infra.shape import cloud_shape
from shared.platform.resource_model import Access, SystemResources


@dataclass(frozen=True)
class Deployment:
    context: Context
    function_urls: dict[str, pulumi.Input[str]]  # the public ones at their host, if any
    front_door_ip: pulumi.Output[str] | None = None


def pubsub_service_agent(project: str) -> pulumi.Output[str]:
    """The Pub/Sub service agent, created if the project has none yet (it exists only
    once Pub/Sub made it; a grant to it before would fail)."""
    identity = gcp.projects.ServiceIdentity(
        "pubsub-agent", project=project, service="pubsub.googleapis.com"
    )
    return identity.member


def check_secret_values(ctx: Context) -> None:
    """A component reading a secret is created only after a version exists: a first
    deployment needs each such secret's value in the stack's configuration."""
    read = {s for access in ctx.system.accesses().values() for s in access.secrets}
    missing = sorted(read - set(ctx.secret_values))
    if missing:
        raise ValueError(
            f"secrets {missing} are read by components but have no value: "
            + "; ".join(f"pulumi config set --secret cartwise:{name} ..." for name in missing)
            + " (docs/DEPLOY.md)"
        )


def deploy(
    system: SystemResources,
    stack: StackConfig,
    root: Path,
    secret_values: Mapping[str, pulumi.Input[str]] | None = None,
    workflows_dir: Path | None = None,
) -> Deployment:
    system = cloud_shape(system)  # push-delivered workers as their push form
    ctx = Context(
        system=system,
        stack=stack,
        root=root,
        workflows_dir=workflows_dir or root / "workflows",
        secret_values=dict(secret_values or {}),
    )
    # Checked before any resource is declared: a refused program changes nothing.
    iam.check_access(ctx)
    check_dead_letters(ctx)
    check_workflows(ctx)
    check_secret_values(ctx)
    # Every resource declared from here on depends on the APIs its type needs.
    pulumi.runtime.register_stack_transformation(ApiEnablement(stack.project))
    messaging = Messaging(ctx, pubsub_service_agent(stack.project))
    BigtableStore(ctx)
    Warehouse(ctx)
    DocumentStores(ctx)
    Secrets(ctx)
    Buckets(ctx)

    granted: list[tuple[str, gcp.serviceaccount.Account, Access, pulumi.Resource]] = []
    sources = Sources(ctx)
    for function in system.functions:
        component = CloudFunction(ctx, sources, messaging, function)
        granted.append((function.name, component.account, component.access, component))
    if system.workers or system.jobs:
        image = RuntimeImage(ctx, sources)
        for worker in system.workers:
            pool = PullWorker(ctx, image, worker)
            granted.append((worker.name, pool.account, pool.access, pool))
        for job in system.jobs:
            run = CloudRunJob(ctx, image, job)
            granted.append((job.name, run.account, run.access, run))
    for declared in workflow_declarations(ctx).values():
        source = workflow_files(ctx.workflows_dir)[declared.name]
        flow = CloudWorkflow(ctx, declared, source)
        granted.append((f"workflow-{declared.name}", flow.account, flow.access, flow))
    if scaled_workers(ctx):
        BacklogAutoscaler(ctx)
    # Grants last: a component may use what is declared after it (a workflow, a job).
    for key, account, access, parent in granted:
        iam.grant(ctx, key, account, access, parent)
    for scheduled in system.scheduler_jobs:
        ScheduledCall(ctx, scheduled)
    urls: dict[str, pulumi.Input[str]] = {name: f.url for name, f in ctx.functions.items()}
    front_door_ip: pulumi.Output[str] | None = None
    if behind_load_balancer(ctx):
        door = FrontDoor(ctx)
        urls.update(door.urls)
        front_door_ip = door.address.address
    Operations(ctx)
    return Deployment(context=ctx, function_urls=urls, front_door_ip=front_door_ip)
