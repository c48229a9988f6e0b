"""The Google APIs the program enables, derived from the types of the resources it declares.

``TYPE_APIS`` maps a resource type (its provider module, ``gcp:storage``, or a whole type
token where one type of a module differs) to the APIs that serve it: the API its
creation calls and, where the deployed code talks to a different API than the one that
creates the resource, that one too (Bigtable: ``bigtableadmin`` creates tables, the
components read and write through ``bigtable``). ``ApiEnablement`` is a stack
transformation: every custom resource of the stack, whoever declares it, gets a
dependency on a ``gcp.projects.Service`` for each API of its type, made the first time a
type needs it. A resource of a type the map does not know stops the program: a new
module needs one line here, not a list of APIs kept by hand elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_gcp as gcp

SERVICE_TYPE = "gcp:projects/service:Service"
SERVICE_IDENTITY_TYPE = "gcp:projects/serviceIdentity:ServiceIdentity"

TYPE_APIS: Mapping[str, tuple[str, ...]] = {
    "gcp:artifactregistry": ("artifactregistry.googleapis.com",),
    "gcp:bigquery": ("bigquery.googleapis.com",),
    # Admin API (instances, tables, backups); data API (the components' reads and writes).
    "gcp:bigtable": ("bigtableadmin.googleapis.com", "bigtable.googleapis.com"),
    "gcp:billing": ("billingbudgets.googleapis.com",),
    # Functions gen 2 are built by Cloud Build into Artifact Registry and served by Run.
    "gcp:cloudfunctionsv2": (
        "cloudfunctions.googleapis.com",
        "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com",
        "run.googleapis.com",
    ),
    "gcp:cloudrunv2": ("run.googleapis.com",),
    "gcp:cloudscheduler": ("cloudscheduler.googleapis.com",),
    "gcp:compute": ("compute.googleapis.com",),
    "gcp:firestore": ("firestore.googleapis.com",),
    "gcp:logging": ("logging.googleapis.com",),
    "gcp:monitoring": ("monitoring.googleapis.com",),
    # Project IAM members go through Cloud Resource Manager.
    "gcp:projects": ("cloudresourcemanager.googleapis.com",),
    # Service Usage itself: on in every project (docs/DEPLOY.md checks it).
    SERVICE_TYPE: (),
    # Served by Service Usage; the identity's own service is added from its inputs.
    SERVICE_IDENTITY_TYPE: (),
    # The autoscaler's configuration; the autoscaler reads its triggers' metrics (the
    # subscriptions' backlog) from Cloud Monitoring.
    "gcp:parametermanager": ("parametermanager.googleapis.com", "monitoring.googleapis.com"),
    "gcp:pubsub": ("pubsub.googleapis.com",),
    "gcp:secretmanager": ("secretmanager.googleapis.com",),
    "gcp:serviceaccount": ("iam.googleapis.com",),
    "gcp:storage": ("storage.googleapis.com",),
    # Scheduler jobs start executions through the executions API.
    "gcp:workflows": ("workflows.googleapis.com", "workflowexecutions.googleapis.com"),
    # Local commands run gcloud: the runtime image (``gcloud builds submit``) and, behind
    # the load balancer, the functions' invoker check (``gcloud run services update``).
    "command:local": (
        "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com",
        "run.googleapis.com",
    ),
}


class UnknownResourceTypeError(ValueError):
    """A custom resource whose type ``TYPE_APIS`` does not map to the APIs serving it."""


def module_of(type_token: str) -> str:
    """``gcp:storage/bucket:Bucket`` -> ``gcp:storage``."""
    package, _, rest = type_token.partition(":")
    return f"{package}:{rest.split('/', 1)[0].split(':', 1)[0]}"


def apis_of(type_token: str, inputs: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The APIs a resource of this type needs enabled before it is created."""
    if type_token in TYPE_APIS:
        found = TYPE_APIS[type_token]
    elif module_of(type_token) in TYPE_APIS:
        found = TYPE_APIS[module_of(type_token)]
    else:
        raise UnknownResourceTypeError(
            f"no API known for resource type {type_token}: add its module to "
            "cartwise_infra.apis.TYPE_APIS"
        )
    if type_token == SERVICE_IDENTITY_TYPE and inputs and isinstance(inputs.get("service"), str):
        found = (*found, inputs["service"])
    return found


def api_resource_name(api: str) -> str:
    return f"api-{api.split('.')[0]}"


class ApiEnablement:
    """The stack transformation: each custom resource after the APIs of its type."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.services: dict[str, gcp.projects.Service] = {}

    def service(self, api: str) -> gcp.projects.Service:
        if api not in self.services:
            self.services[api] = gcp.projects.Service(
                api_resource_name(api),
                project=self.project,
                service=api,
                disable_on_destroy=False,
            )
        return self.services[api]

    def __call__(
        self, args: pulumi.ResourceTransformationArgs
    ) -> pulumi.ResourceTransformationResult | None:
        if not isinstance(args.resource, pulumi.CustomResource):
            return None  # components are not created; their children are
        props = args.props if isinstance(args.props, Mapping) else {}
        apis = apis_of(args.type_, props)
        if not apis:
            return None
        needed: list[pulumi.Input[pulumi.Resource]] = [self.service(api) for api in apis]
        opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=needed))
        return pulumi.ResourceTransformationResult(args.props, opts)
