"""What every component needs: the declaration, the stack, and the resources made so far."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from cartwise_infra.config import StackConfig
from shared.platform.resource_model import Sizing, SystemResources


def cloud_name(name: str) -> str:
    """Cloud Run and Functions ids: lower case, hyphens (``ingest_events`` -> ``ingest-events``)."""
    return name.replace("_", "-").lower()


def account_id(prefix: str, name: str) -> str:
    """A service account id (6-30 characters, ``[a-z][-a-z0-9]*``), unique per name."""
    candidate = f"{prefix}-{cloud_name(name)}"
    if len(candidate) <= 30:
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{candidate[:23].rstrip('-')}-{digest}"


@dataclass
class Context:
    """Shared by the components; each adds the resources the next ones refer to."""

    system: SystemResources
    stack: StackConfig
    root: Path
    workflows_dir: Path
    secret_values: dict[str, pulumi.Input[str]]
    topics: dict[str, gcp.pubsub.Topic] = field(default_factory=dict)
    subscriptions: dict[str, gcp.pubsub.Subscription] = field(default_factory=dict)
    bigtable_instance: gcp.bigtable.Instance | None = None
    bigtable_app_profile: gcp.bigtable.AppProfile | None = None
    bigtable_tables: dict[str, gcp.bigtable.Table] = field(default_factory=dict)
    datasets: dict[str, gcp.bigquery.Dataset] = field(default_factory=dict)
    databases: dict[str, gcp.firestore.Database] = field(default_factory=dict)
    secrets: dict[str, gcp.secretmanager.Secret] = field(default_factory=dict)
    secret_versions: dict[str, gcp.secretmanager.SecretVersion] = field(default_factory=dict)
    secret_grants: dict[tuple[str, str], gcp.secretmanager.SecretIamMember] = field(
        default_factory=dict
    )
    buckets: dict[str, gcp.storage.Bucket] = field(default_factory=dict)
    functions: dict[str, gcp.cloudfunctionsv2.Function] = field(default_factory=dict)
    jobs: dict[str, gcp.cloudrunv2.Job] = field(default_factory=dict)
    worker_pools: dict[str, gcp.cloudrunv2.WorkerPool] = field(default_factory=dict)
    workflows: dict[str, gcp.workflows.Workflow] = field(default_factory=dict)
    service_accounts: dict[str, gcp.serviceaccount.Account] = field(default_factory=dict)

    def child(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options of a component's child (the APIs its type needs are added to every
        resource by ``apis.ApiEnablement``)."""
        return pulumi.ResourceOptions(parent=parent)

    @property
    def project(self) -> str:
        return self.stack.project

    @property
    def region(self) -> str:
        return self.stack.region

    def max_instances(self, sizing: Sizing) -> int:
        cap = self.stack.max_instances
        return sizing.max_instances if cap is None else min(sizing.max_instances, cap)

    def min_instances(self, sizing: Sizing) -> int:
        cap = self.stack.min_instances
        low = sizing.min_instances if cap is None else min(sizing.min_instances, cap)
        return min(low, self.max_instances(sizing))

    def instance_count(self, instances: int) -> int:
        cap = self.stack.max_instances
        return instances if cap is None else max(1, min(instances, cap))

    def partition_expiration_days(self, dataset: str, table_days: int | None) -> int | None:
        declared = table_days
        if declared is None:
            declared = next(
                d.partition_expiration_days
                for d in self.system.bigquery_datasets
                if d.name == dataset
            )
        cap = self.stack.retention_days.get(dataset)
        if cap is None:
            return declared
        return cap if declared is None else min(declared, cap)

    def function_url_env(self) -> dict[str, str]:
        """The user environment variable that gives a workflow each function's URL: the
        same names the local stack gives the workflows emulator
        (``shared.system.workflow_render``)."""
        from shared.system.workflow_render import url_variable

        return {f.name: url_variable(f.name) for f in self.system.functions}
