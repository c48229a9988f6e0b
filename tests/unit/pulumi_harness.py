"""Builds the Pulumi program under ``pulumi.runtime.set_mocks`` (no cloud, no CLI) and
records every resource it registers, with its inputs as the provider would receive them."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from cartwise_infra.config import StackConfig, stack_config
from cartwise_infra.program import deploy
from shared.platform.resource_model import SystemResources
from shared.system.resources import SYSTEM

ROOT = Path(__file__).resolve().parents[2]
PULUMI_DIR = ROOT / "infra" / "pulumi"
PROJECT_NUMBER = "123456789012"


def stack_file(stack: str) -> StackConfig:
    """A stack's configuration, parsed as ``__main__`` parses it."""
    values = yaml.safe_load((PULUMI_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    cartwise = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("cartwise:")}
    return stack_config(values["gcp:project"], cartwise)


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, project: str, region: str) -> None:
        self.project = project
        self.region = region
        self.registered: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        self.registered.append(Registered(args.typ, args.name, inputs))
        outputs = dict(inputs)
        name = str(inputs.get("name", args.name))
        kind = args.typ.rsplit(":", 1)[-1]
        resource_id = f"{args.name}-id"
        if kind == "Account":
            email = f"{inputs['accountId']}@{self.project}.iam.gserviceaccount.com"
            outputs["email"] = email
            resource_id = f"projects/{self.project}/serviceAccounts/{email}"
        elif kind == "Topic":
            resource_id = f"projects/{self.project}/topics/{name}"
        elif kind == "Subscription":
            resource_id = f"projects/{self.project}/subscriptions/{name}"
        elif kind == "Function":
            outputs["url"] = f"https://{name}-abc123-ew.a.run.app"
        elif kind == "Workflow":
            resource_id = f"projects/{self.project}/locations/{self.region}/workflows/{name}"
        elif kind == "Secret":
            resource_id = f"projects/{self.project}/secrets/{inputs['secretId']}"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": PROJECT_NUMBER, "projectId": self.project}
        raise AssertionError(f"unexpected invoke {args.token}")


@dataclass(frozen=True)
class Program:
    """What one run of the program registered."""

    resources: list[Registered]
    stack: StackConfig
    system: SystemResources

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
    mocks = mocks or RecordingMocks(stack.project, stack.region)
    pulumi.runtime.set_mocks(mocks, project="cartwise", stack="test", preview=False)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def run() -> None:
        deploy(
            system,
            stack,
            ROOT,
            secret_values=secret_values,
            workflows_dir=workflows_dir,
        )

    run()
    return Program(resources=mocks.registered, stack=stack, system=system)


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
}


def grant_of(member: Registered) -> Grant:
    kind = member.type.rsplit(":", 1)[-1]
    role = str(member.inputs["role"])
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
