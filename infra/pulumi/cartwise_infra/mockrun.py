"""The program run under ``pulumi.runtime.set_mocks``: no cloud, no CLI, no state.

``RecordingMocks`` answers every resource with its inputs as outputs (plus the few
outputs Google Cloud computes that others refer to: an account's email, a function's
URL, a service agent's email) and records what the provider would receive;
``GraphMonitor`` records what the engine would receive: each resource's parent and
dependencies, the graph ``cartwise_infra.graph`` judges. Used by the unit tests and by
``make plan``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import ROOT

from cartwise_infra.config import StackConfig
from cartwise_infra.graph import Graph, Node
from cartwise_infra.program import deploy
from shared.platform.resource_model import SystemResources

PROJECT_NUMBER = "123456789012"


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
        elif kind == "ServiceIdentity":
            agent = str(inputs["service"]).split(".", 1)[0]
            email = f"service-{PROJECT_NUMBER}@gcp-sa-{agent}.iam.gserviceaccount.com"
            outputs.update(email=email, member=f"serviceAccount:{email}")
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
        elif kind == "GlobalAddress":
            outputs["address"] = "203.0.113.10"  # documentation range (RFC 5737)
        elif kind == "NotificationChannel":
            outputs["name"] = f"projects/{self.project}/notificationChannels/{args.name}"
        elif kind == "Metric" and args.typ.startswith("gcp:logging"):
            outputs["name"] = name
        if args.typ.startswith("gcp:compute"):
            outputs.setdefault(
                "selfLink",
                f"https://www.googleapis.com/compute/v1/projects/{self.project}/{kind}/{name}",
            )
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        if args.token == "gcp:organizations/getProject:getProject":  # noqa: S105 (not a secret)
            return {"number": PROJECT_NUMBER, "projectId": self.project}
        raise AssertionError(f"unexpected invoke {args.token}")


class GraphMonitor(MockMonitor):
    """The mock engine, keeping each registration's parent and dependencies."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.nodes: dict[str, Node] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = rpc.deserialize_properties(request.object)
        outputs = rpc.deserialize_properties(response.object)
        self.nodes[response.urn] = Node(
            urn=response.urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent or None,
            dependencies=frozenset(request.dependencies),
            inputs=inputs,
            outputs=outputs,
        )
        return response

    def graph(self) -> Graph:
        return Graph(nodes=dict(self.nodes))


@dataclass(frozen=True)
class MockRun:
    resources: list[Registered]
    graph: Graph


def run(
    system: SystemResources,
    stack: StackConfig,
    root: Path,
    *,
    secret_values: Mapping[str, str] | None = None,
    workflows_dir: Path | None = None,
    mocks: RecordingMocks | None = None,
) -> MockRun:
    """One run of ``deploy`` as ``pulumi up`` would make it, on a fresh stack."""
    mocks = mocks or RecordingMocks(stack.project, stack.region)
    monitor = GraphMonitor(mocks)
    ROOT.set(None)  # a new stack resource: nothing registered by an earlier run
    pulumi.runtime.set_mocks(
        mocks, project="cartwise", stack="mock", preview=False, monitor=monitor
    )

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        deploy(system, stack, root, secret_values=secret_values, workflows_dir=workflows_dir)

    program()
    return MockRun(resources=mocks.registered, graph=monitor.graph())
