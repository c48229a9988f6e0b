"""A first ``pulumi up`` on an empty project converges: the declared graph orders every
creation after what it needs (``cartwise_infra.graph``), and every API the program's
resource types use is enabled by the program (``cartwise_infra.apis``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from cartwise_infra import apis, compute, iam
from cartwise_infra import program as program_module
from cartwise_infra.graph import Graph, Node, Violation
from tests.unit.pulumi_harness import Program, build, extended_build, stack_file, system_build


@pytest.fixture
def program() -> Program:
    return system_build()


def rules(violations: list[Violation]) -> set[str]:
    return {v.rule for v in violations}


@pytest.mark.parametrize("which", ["system", "extended", "dev"])
def test_every_creation_is_ordered_after_what_it_needs(which: str) -> None:
    if which == "dev":
        built = build(stack=stack_file("dev"))
    else:
        built = system_build() if which == "system" else extended_build()
    assert built.graph.violations() == []
    assert len(built.graph.custom()) > 200  # the whole program, not an empty graph


def test_the_apis_the_issue_found_missing_are_enabled(program: Program) -> None:
    enabled = {n.inputs["service"] for n in program.graph.of_type(apis.SERVICE_TYPE)}
    assert {"cloudresourcemanager.googleapis.com", "bigtable.googleapis.com"} <= enabled
    # Derived, not listed: each enabled API is needed by a resource type in use.
    used = {a for n in program.graph.custom() for a in apis.apis_of(n.type, n.inputs)}
    assert enabled == used


def test_apis_follow_the_provider_module() -> None:
    assert apis.apis_of("gcp:storage/bucket:Bucket") == ("storage.googleapis.com",)
    assert apis.apis_of("gcp:cloudrunv2/job:Job") == ("run.googleapis.com",)
    assert apis.apis_of("gcp:bigquery/table:Table") == ("bigquery.googleapis.com",)
    assert apis.apis_of("gcp:cloudscheduler/job:Job") == ("cloudscheduler.googleapis.com",)
    assert apis.apis_of("gcp:projects/iAMMember:IAMMember") == (
        "cloudresourcemanager.googleapis.com",
    )
    identity = apis.apis_of(apis.SERVICE_IDENTITY_TYPE, {"service": "pubsub.googleapis.com"})
    assert identity == ("pubsub.googleapis.com",)
    with pytest.raises(apis.UnknownResourceTypeError, match="gcp:alloydb/cluster:Cluster"):
        apis.apis_of("gcp:alloydb/cluster:Cluster")


def with_node(graph: Graph, node: Node) -> Graph:
    return Graph(nodes={**graph.nodes, node.urn: node})


def test_a_resource_whose_api_is_not_enabled_fails(program: Program) -> None:
    """A resource another component adds, of a type served by an API nothing enables
    (Compute Engine), is reported; so is one that does not wait for its API."""
    network = Node(
        urn="urn:test::network",
        type="gcp:compute/network:Network",
        name="lb-network",
        custom=True,
        parent=None,
        dependencies=frozenset(),
    )
    (problem,) = with_node(program.graph, network).violations()
    assert "compute.googleapis.com" in str(problem) and "does not enable it" in str(problem)
    storage = next(n for n in program.graph.of_type(apis.SERVICE_TYPE) if "storage" in n.name)
    bucket = dataclasses.replace(
        network, type="gcp:storage/bucket:Bucket", dependencies=frozenset()
    )
    (problem,) = with_node(program.graph, bucket).violations()
    assert "storage.googleapis.com" in str(problem) and "no dependency" in str(problem)
    waits = dataclasses.replace(bucket, dependencies=frozenset({storage.urn}))
    assert with_node(program.graph, waits).violations() == []


def test_a_resource_of_an_unknown_type_stops_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    from cartwise_infra.data import Buckets

    original = Buckets.__init__

    def with_an_unknown_type(self: Buckets, ctx: object) -> None:
        original(self, ctx)  # type: ignore[arg-type]
        pulumi.CustomResource("gcp:alloydb/cluster:Cluster", "cluster", {}, None)

    monkeypatch.setattr(Buckets, "__init__", with_an_unknown_type)
    with pytest.raises(Exception, match="no API known for resource type gcp:alloydb"):
        build()


@pytest.fixture
def no_api_enablement(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(pulumi.runtime, "register_stack_transformation", lambda _t: None)
    yield


@pytest.mark.usefixtures("no_api_enablement")
def test_without_the_api_transformation_every_resource_is_reported() -> None:
    graph = build().graph
    assert rules(graph.violations()) == {"apis"}
    reported = {v.resource for v in graph.api_violations()}
    assert len(reported) == len([n for n in graph.custom() if apis.apis_of(n.type, n.inputs)])


def test_grants_to_the_pubsub_agent_wait_for_its_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The agent named from the project number (as before): a grant to an agent that
    may not exist yet."""

    def from_project_number(project: str) -> pulumi.Output[str]:
        import pulumi_gcp as gcp

        number = gcp.organizations.get_project_output(project_id=project).number
        return pulumi.Output.concat(
            "serviceAccount:service-", number, "@gcp-sa-pubsub.iam.gserviceaccount.com"
        )

    monkeypatch.setattr(program_module, "pubsub_service_agent", from_project_number)
    violations = build().graph.violations()
    assert rules(violations) == {"service-agents"}
    assert all(
        "TopicIAMMember" in v.resource or "SubscriptionIAMMember" in v.resource for v in violations
    )


def test_secret_readers_wait_for_the_version_and_their_grant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Grants made last and versions not waited for (as before): decide_events' worker
    pool and the functions reading a key could be created first."""

    def grant_only(*args: Any) -> list[pulumi.Resource]:
        iam_secret_access(*args)  # the grants exist, nothing waits for them
        return []

    iam_secret_access = iam.secret_access
    monkeypatch.setattr(iam, "secret_access", grant_only)
    violations = build().graph.violations()
    assert rules(violations) == {"secrets"}
    readers = {v.resource.split()[-1] for v in violations}
    assert "decide_events" in readers
    assert any("a version of secret play-signing-key" in str(v) for v in violations)
    assert any("accessor grant of play-signing-key" in str(v) for v in violations)


def test_builds_wait_for_the_build_identity_grants(monkeypatch: pytest.MonkeyPatch) -> None:
    original = compute.Sources.__init__

    def forgets_its_grants(self: compute.Sources, ctx: object) -> None:
        original(self, ctx)  # type: ignore[arg-type]
        self.grants = []

    monkeypatch.setattr(compute.Sources, "__init__", forgets_its_grants)
    violations = build().graph.violations()
    assert rules(violations) == {"build-identity"}
    built = {v.resource.split()[0] for v in violations}
    assert built == {"gcp:cloudfunctionsv2/function:Function", "command:local:Command"}


def test_a_resource_naming_an_account_it_does_not_wait_for_fails(program: Program) -> None:
    account = next(n for n in program.graph.custom() if n.type.endswith("account:Account"))
    services = {n.inputs["service"]: n.urn for n in program.graph.of_type(apis.SERVICE_TYPE)}
    job = Node(
        urn="urn:test::job",
        type="gcp:cloudrunv2/job:Job",
        name="hard-coded",
        custom=True,
        parent=None,
        dependencies=frozenset({services["run.googleapis.com"]}),
        inputs={"template": {"template": {"serviceAccount": account.outputs["email"]}}},
    )
    (problem,) = with_node(program.graph, job).violations()
    assert problem.rule == "references"


def test_the_plan_lists_every_resource_in_creation_waves(program: Program) -> None:
    waves = program.graph.waves()
    placed = [n.urn for wave in waves for n in wave]
    assert sorted(placed) == sorted(n.urn for n in program.graph.custom())
    seen: set[str] = set()
    for wave in waves:
        for node in wave:
            assert node.dependencies & {n.urn for n in wave} == set()
        seen |= {n.urn for n in wave}
    assert {n.inputs["service"] for n in waves[0]} >= {"pubsub.googleapis.com"}


def test_make_plan_prints_every_resource_with_type_parent_and_dependencies() -> None:
    import io

    from cartwise_infra import plan

    out = io.StringIO()
    assert plan.main(["--stack", "dev"], out=out) == 0
    text = out.getvalue()
    assert "dependency rules: ok" in text
    built = build(stack=stack_file("dev"))
    for node in built.graph.custom():
        assert f"  {node.type}  {node.name}\n" in text
    marker = "  gcp:cloudfunctionsv2/function:Function  decide_events\n"
    assert marker in text
    parent, needs = text.split(marker)[1].splitlines()[:2]
    assert parent.strip() == "parent: CloudFunction decide_events"
    assert "decide_events-secret-play-signing-key" in needs
    assert "secret-play-signing-key-version" in needs


def test_bigtable_users_wait_for_the_app_profile_they_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Components created without waiting for the profile (a request naming an unknown
    profile is refused): every Bigtable user is reported, nothing else is."""
    monkeypatch.setattr(compute, "profile_needed", lambda ctx, access: [])
    violations = build().graph.violations()
    assert rules(violations) == {"app-profiles"}
    users = {v.resource.split()[-1] for v in violations}
    assert {"ingest_events", "decide_events", "experiences", "freeze_events"} <= users
    assert "campaigns" not in users  # no Bigtable access, no profile in its environment


def test_every_bigtable_user_names_the_single_cluster_transactional_profile(
    program: Program,
) -> None:
    from cartwise_infra.graph import app_profiles_named

    (profile,) = program.graph.of_type("gcp:bigtable/appProfile:AppProfile")
    routing = profile.inputs["singleClusterRouting"]
    assert routing["allowTransactionalWrites"] is True
    assert profile.inputs["appProfileId"] == "components"
    runtimes = [
        n
        for n in program.graph.custom()
        if n.type
        in {
            "gcp:cloudfunctionsv2/function:Function",
            "gcp:cloudrunv2/workerPool:WorkerPool",
            "gcp:cloudrunv2/job:Job",
        }
    ]
    named = {n.name for n in runtimes if app_profiles_named(n) == {"components"}}
    assert {"ingest_events", "decide_events", "nightly_steps", "freeze_events"} <= named
