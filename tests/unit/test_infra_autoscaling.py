"""Capacity that follows load for the pull workers in the cloud: the backlog autoscaler
(CREMA) is configured, from the declaration alone, with one scaled object per worker
declaring ``cloud_scaling``, and it is sized for the peak (docs/CAPACITY.md)."""

from __future__ import annotations

import json
import math

import pytest

from cartwise_infra.autoscaling import PARAMETER_ID, crema_config
from cartwise_infra.context import cloud_name
from shared.platform.resource_model import BacklogScaling
from shared.system.resources import SYSTEM
from tests.unit.pulumi_harness import Program, build

PEAK_EVENTS_S = 10_000
# A freezer instance's sustained rate assumed in docs/CAPACITY.md ("How capacity follows
# load"): below the local freezer's measured append rate (docs/BENCHMARKS.md), whose
# ceiling is the emulator's, not Storage Write's.
FREEZER_EVENTS_PER_INSTANCE_S = 1_000


@pytest.fixture(scope="module")
def program() -> Program:
    return build()


def config_of(program: Program) -> dict[str, object]:
    (version,) = program.of("parametermanager/parameterVersion:ParameterVersion")
    data = version.inputs["parameterData"]  # a secret output (sensitive): its value
    loaded: dict[str, object] = json.loads(data["value"] if isinstance(data, dict) else data)
    return loaded


def test_each_backlog_scaled_worker_has_its_scaled_object(program: Program) -> None:
    project, region = program.stack.project, program.stack.region
    scaled = {w.name: w for w in SYSTEM.workers if w.cloud_scaling is not None}
    assert {"freeze_events", "freeze_decisions", "freeze_plays"} <= set(scaled)
    spec = config_of(program)["spec"]
    assert isinstance(spec, dict)
    objects = {o["spec"]["scaleTargetRef"]["name"]: o["spec"] for o in spec["scaledObjects"]}
    assert set(objects) == {
        f"projects/{project}/locations/{region}/workerpools/{cloud_name(n)}" for n in scaled
    }
    for name, worker in scaled.items():
        assert worker.cloud_scaling is not None
        target = objects[f"projects/{project}/locations/{region}/workerpools/{cloud_name(name)}"]
        assert (target["minReplicaCount"], target["maxReplicaCount"]) == (
            worker.cloud_scaling.min_instances,
            worker.cloud_scaling.max_instances,
        )
        (trigger,) = target["triggers"]
        assert trigger["type"] == "gcp-pubsub"
        assert trigger["metadata"]["subscriptionName"] == (
            f"projects/{project}/subscriptions/{worker.subscription}"
        )
        assert trigger["metadata"]["value"] == str(worker.cloud_scaling.backlog_per_instance)


def test_the_autoscaler_runs_on_the_configs_version_and_waits_for_its_grants(
    program: Program,
) -> None:
    (version,) = program.graph.of_type("gcp:parametermanager/parameterVersion:ParameterVersion")
    (service,) = [
        n for n in program.graph.of_type("gcp:cloudrunv2/service:Service") if n.name == "autoscaler"
    ]
    (container,) = service.inputs["template"]["containers"]
    env = {e["name"]: e["value"] for e in container["envs"]}
    assert env["CREMA_CONFIG"] == (
        f"projects/{program.stack.project}/locations/global/parameters/{PARAMETER_ID}"
        f"/versions/{version.inputs['parameterVersionId']}"
    )
    assert container["resources"]["cpuIdle"] is False  # it polls between requests
    assert program.graph.created_after(service, version)
    grants = [
        n
        for n in program.graph.custom()
        if n.type.lower().endswith("iammember") and "autoscaler" in str(n.inputs.get("member"))
    ]
    assert len(grants) == 2 + 2 * 3  # project roles, then per pool: scale it, act as it
    assert all(program.graph.created_after(service, g) for g in grants)


def test_a_push_worker_cannot_declare_backlog_scaling() -> None:
    decider = next(w for w in SYSTEM.workers if w.cloud_delivery == "push")
    with pytest.raises(ValueError, match="scaled by Cloud Run"):
        decider.model_validate(
            {
                **decider.model_dump(),
                "cloud_scaling": {
                    "min_instances": 1,
                    "max_instances": 2,
                    "backlog_per_instance": 10,
                },
            }
        )


def test_the_event_freezers_reach_the_peak_with_headroom() -> None:
    """At the maximum count, the freezers drain the peak with 20 % to spare; the backlog
    at equilibrium (count x backlog per instance) stays under a minute of the peak, the
    lag docs/CAPACITY.md accepts for the cold path."""
    for name in ("freeze_events", "freeze_decisions"):
        scaling = next(w.cloud_scaling for w in SYSTEM.workers if w.name == name)
        assert isinstance(scaling, BacklogScaling)
        needed = math.ceil(PEAK_EVENTS_S * 1.2 / FREEZER_EVENTS_PER_INSTANCE_S)
        assert scaling.max_instances >= needed
        assert needed * scaling.backlog_per_instance <= 60 * PEAK_EVENTS_S


def test_the_config_is_empty_of_workers_without_scaling() -> None:
    config = crema_config("p", "r", [])
    assert config["spec"]["scaledObjects"] == []
