"""Public endpoints under a domain-restricted-sharing org policy (stack ``publicAccess:
loadBalancer``): no allUsers member, a load balancer with serverless NEGs, Cloud Armor
rate limiting per client, and a graph that still converges."""

from __future__ import annotations

import functools

import pytest

from cartwise_infra.context import cloud_name
from shared.system.resources import SYSTEM
from tests.unit.pulumi_harness import Program, build, stack_file

PUBLIC = {f.name for f in SYSTEM.functions if f.public}


@functools.cache
def behind_lb() -> Program:
    stack = stack_file("prod").model_copy(
        update={"public_access": "loadBalancer", "domain": "cartwise.example.com"}
    )
    return build(stack=stack)


@pytest.fixture
def program() -> Program:
    return behind_lb()


def test_no_member_is_all_users(program: Program) -> None:
    assert PUBLIC
    assert not [m for m in program.iam_members() if m.inputs["member"] == "allUsers"]


def test_public_functions_take_traffic_from_the_load_balancer_only(program: Program) -> None:
    functions = program.named("cloudfunctionsv2/function:Function")
    for declared in program.system.functions:
        ingress = functions[cloud_name(declared.name)].inputs["serviceConfig"]["ingressSettings"]
        expected = "ALLOW_INTERNAL_AND_GCLB" if declared.public else "ALLOW_ALL"
        assert ingress == expected, declared.name
    switches = [
        c for c in program.of("local:Command") if "no-invoker-iam-check" in c.inputs["create"]
    ]
    assert len(switches) == len(PUBLIC)


def test_each_public_function_has_its_host_backend_and_rate_limit(program: Program) -> None:
    negs = {n.inputs["cloudFunction"]["function"] for n in program.of("RegionNetworkEndpointGroup")}
    assert negs == {cloud_name(n) for n in PUBLIC}
    (armor,) = program.of("compute/securityPolicy:SecurityPolicy")
    ban = next(r for r in armor.inputs["rules"] if r["action"] == "rate_based_ban")
    assert ban["rateLimitOptions"]["enforceOnKey"] == "IP"
    assert ban["rateLimitOptions"]["rateLimitThreshold"] == {"count": 1200, "intervalSec": 60}
    backends = program.of("compute/backendService:BackendService")
    assert len(backends) == len(PUBLIC)
    assert {b.inputs["securityPolicy"] for b in backends} == {
        f"https://www.googleapis.com/compute/v1/projects/{program.stack.project}"
        "/SecurityPolicy/cartwise-public"
    }
    (url_map,) = program.of("compute/uRLMap:URLMap")
    hosts = {h for rule in url_map.inputs["hostRules"] for h in rule["hosts"]}
    assert hosts == {f"{cloud_name(n)}.cartwise.example.com" for n in PUBLIC}
    (certificate,) = program.of("ManagedSslCertificate")
    assert set(certificate.inputs["managed"]["domains"]) == hosts


def test_the_load_balancer_graph_converges_and_enables_compute(program: Program) -> None:
    """compute.googleapis.com is enabled because resources of gcp:compute are declared:
    nothing was added to a list."""
    assert program.graph.violations() == []
    enabled = {n.inputs["service"] for n in program.of("projects/service:Service")}
    assert "compute.googleapis.com" in enabled
    assert "compute.googleapis.com" not in {
        n.inputs["service"] for n in build().of("projects/service:Service")
    }


def test_the_load_balancer_needs_a_domain() -> None:
    with pytest.raises(ValueError, match="needs a domain"):
        stack_file("prod").model_validate(
            {**stack_file("prod").model_dump(by_alias=True), "publicAccess": "loadBalancer"}
        )
