"""Builds the Pulumi program under ``pulumi.runtime.set_mocks`` (no cloud, no CLI) and
records every resource it registers, with its inputs as the provider would receive them."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cartwise_infra import config, mockrun
from cartwise_infra.config import StackConfig
from cartwise_infra.graph import Graph
from cartwise_infra.mockrun import PROJECT_NUMBER, RecordingMocks, Registered
from cartwise_infra.shape import cloud_shape

__all__ = ["PROJECT_NUMBER", "RecordingMocks", "Registered"]  # for the tests importing them here
from shared.platform.resource_model import SystemResources
from shared.system.resources import SYSTEM

ROOT = Path(__file__).resolve().parents[2]
PULUMI_DIR = ROOT / "infra" / "pulumi"


def stack_file(stack: str) -> StackConfig:
    """A stack's configuration, parsed as ``__main__`` parses it."""
    return config.stack_file(PULUMI_DIR / f"Pulumi.{stack}.yaml")


@dataclass(frozen=True)
class Program:
    """What one run of the program registered."""

    resources: list[Registered]
    stack: StackConfig
    system: SystemResources
    graph: Graph

    def of(self, kind: str) -> list[Registered]:
        """Resources whose type token ends with ``kind`` (``pubsub/topic:Topic``)."""
        return [r for r in self.resources if r.type.endswith(kind)]

    def named(self, kind: str) -> dict[str, Registered]:
        return {str(r.inputs.get("name")): r for r in self.of(kind)}

    def iam_members(self) -> Iterator[Registered]:
        for r in self.resources:
            if r.type.lower().endswith("iammember"):
                yield r

    def account_email(self, account_id: str) -> str:
        return f"{account_id}@{self.stack.project}.iam.gserviceaccount.com"


def build(
    system: SystemResources = SYSTEM,
    stack: StackConfig | None = None,
    *,
    workflows_dir: Path | None = None,
    secret_values: Mapping[str, str] | None = None,
    mocks: RecordingMocks | None = None,
) -> Program:
    stack = stack or stack_file("prod")
    if secret_values is None:  # a value for every secret: what a first deployment needs
        secret_values = {s.name: f"a-test-value-for-{s.name}" for s in system.secrets}
    recorded = mockrun.run(
        system,
        stack,
        ROOT,
        secret_values=secret_values,
        workflows_dir=workflows_dir,
        mocks=mocks,
    )
    return Program(
        resources=recorded.resources, stack=stack, system=cloud_shape(system), graph=recorded.graph
    )


@functools.cache
def system_build() -> Program:
    """SYSTEM on the prod stack, built once per test session."""
    return build()


@functools.cache
def extended_build() -> Program:
    """The extended system (push function, jobs, scheduled workflow, rewards path)."""
    from tests.unit.infra_systems import extended_system, nightly_workflows_dir

    folder = nightly_workflows_dir(Path(tempfile.mkdtemp(prefix="cartwise-infra-")))
    return build(extended_system(), workflows_dir=folder)


# --- IAM, as registered ----------------------------------------------------------------

Grant = tuple[str, str]  # (role, "kind:target")

_TARGET_INPUT = {
    "TopicIAMMember": ("topic", "topic"),
    "SubscriptionIAMMember": ("subscription", "subscription"),
    "TableIamMember": ("bigtable", "table"),
    "DatasetIamMember": ("dataset", "datasetId"),
    "BucketIAMMember": ("bucket", "bucket"),
    "SecretIamMember": ("secret", "secretId"),
    "ServiceIamMember": ("service", "name"),
    "JobIamMember": ("job", "name"),
    "RepositoryIamMember": ("repository", "repository"),
    "WorkerPoolIamMember": ("workerpool", "name"),
}


def grant_of(member: Registered) -> Grant:
    kind = member.type.rsplit(":", 1)[-1]
    role = str(member.inputs["role"])
    if member.type.startswith("gcp:serviceaccount/"):  # on a service account
        return role, f"account:{member.inputs['serviceAccountId']}"
    if kind == "IAMMember":  # on the project
        condition = member.inputs.get("condition")
        if condition is None:
            return role, "project"
        expression = str(condition["expression"])
        database = expression.split("/databases/")[1].rstrip('"')
        return role, f"firestore:{database}"
    label, key = _TARGET_INPUT[kind]
    return role, f"{label}:{member.inputs[key]}"


def grants_by_member(program: Program) -> dict[str, set[Grant]]:
    found: dict[str, set[Grant]] = {}
    for member in program.iam_members():
        found.setdefault(str(member.inputs["member"]), set()).add(grant_of(member))
    return found
