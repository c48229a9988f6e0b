"""Operations as code: alerts (each with its threshold, its promise and a runbook), one
dashboard, log-based metrics, backups, point-in-time recovery, Scheduler deadlines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cartwise_infra.context import cloud_name
from cartwise_infra.graph import Graph, Node
from cartwise_infra.operations import LOG_METRICS
from shared.system.resources import SYSTEM
from tests.unit.pulumi_harness import ROOT, Program, build, stack_file, system_build


@pytest.fixture
def program() -> Program:
    return system_build()


def alerts(program: Program) -> dict[str, dict[str, Any]]:
    return {r.name.removeprefix("alert-"): r.inputs for r in program.of("AlertPolicy")}


def test_every_consumer_and_http_function_has_its_alert(program: Program) -> None:
    found = alerts(program)
    consumed = {w.subscription for w in SYSTEM.workers} | {
        s.name for s in SYSTEM.subscriptions if s.push_function
    }
    for name in consumed:
        conditions = {c["displayName"] for c in found[f"lag-{name}"]["conditions"]}
        assert conditions == {"oldest unacked age", "backlog"}
    for function in SYSTEM.functions:
        if function.signature == "http":
            policy = found[f"http-{cloud_name(function.name)}"]
            assert {c["displayName"] for c in policy["conditions"]} == {
                "5xx ratio",
                "p95 latency",
            }
    assert {"dead-letters", "nightly", "erasures-overdue", "budget-exhausted"} <= set(found)


def test_each_alert_states_its_threshold_promise_and_runbook(program: Program) -> None:
    deploy_doc = (ROOT / "docs" / "DEPLOY.md").read_text()
    for key, policy in alerts(program).items():
        content = policy["documentation"]["content"]
        assert "**Threshold**" in content and "**Protects**" in content, key
        assert f"`{key}`" in content
        runbook = key.split("-", 1)[0] + "-" if key.startswith(("lag-", "http-")) else key
        assert f"`{runbook}" in deploy_doc, f"no runbook for {key} in docs/DEPLOY.md"


def test_the_ingest_alert_watches_its_5xx_ratio_and_p95(program: Program) -> None:
    ingest = alerts(program)["http-ingest-events"]
    ratio, latency = ingest["conditions"]
    threshold = ratio["conditionThreshold"]
    assert 'response_code_class = "5xx"' in threshold["filter"]
    assert "response_code_class" not in threshold["denominatorFilter"]
    assert threshold["thresholdValue"] == 0.01
    assert latency["conditionThreshold"]["thresholdValue"] == 500
    reducer = latency["conditionThreshold"]["aggregations"][0]["crossSeriesReducer"]
    assert reducer == "REDUCE_PERCENTILE_95"


def test_log_based_metrics_count_the_structured_logs_they_name(program: Program) -> None:
    metrics = {r.inputs["name"]: r.inputs for r in program.of("logging/metric:Metric")}
    assert set(metrics) == {m.name for m in LOG_METRICS}
    for declared in LOG_METRICS:
        assert metrics[declared.name]["filter"] == f'jsonPayload.message = "{declared.message}"'
        # The message is the one the code logs.
        sources = [p.read_text() for p in (ROOT / "shared").rglob("*.py")]
        assert any(f'"{declared.message}"' in text for text in sources), declared.message


def test_one_dashboard_with_a_tile_per_alert_condition(program: Program) -> None:
    (dashboard,) = program.of("monitoring/dashboard:Dashboard")
    tiles = json.loads(dashboard.inputs["dashboardJson"])["mosaicLayout"]["tiles"]
    conditions = sum(len(p["conditions"]) for p in alerts(program).values())
    assert len(tiles) == conditions


def test_an_alert_created_before_its_log_metric_fails_the_rule(program: Program) -> None:
    services = {n.inputs["service"]: n.urn for n in program.graph.custom() if "service" in n.inputs}
    alert = Node(
        urn="urn:test::alert",
        type="gcp:monitoring/alertPolicy:AlertPolicy",
        name="early",
        custom=True,
        parent=None,
        dependencies=frozenset({services["monitoring.googleapis.com"]}),
        inputs={"conditions": [{"filter": f'metric.type = "{LOG_METRICS[0].type}"'}]},
    )
    graph = Graph(nodes={**program.graph.nodes, alert.urn: alert})
    (problem,) = graph.violations()
    assert problem.rule == "log-metrics"


def test_alerts_are_sent_to_the_stacks_addresses() -> None:
    stack = stack_file("dev").model_copy(update={"alert_emails": ("ops@example.com",)})
    built = build(stack=stack)
    (channel,) = built.of("NotificationChannel")
    assert channel.inputs["labels"] == {"email_address": "ops@example.com"}
    sent_to = [f"projects/{stack.project}/notificationChannels/alerts-email-0"]
    for policy in built.of("AlertPolicy"):
        assert policy.inputs["notificationChannels"] == sent_to


def test_scheduled_calls_wait_as_long_as_their_function_may_run(program: Program) -> None:
    """The default attempt deadline (3 min) would retry a purge still running (30 min):
    two runs at once."""
    functions = {f.name: f for f in SYSTEM.functions}
    jobs = program.named("cloudscheduler/job:Job")
    for declared in SYSTEM.scheduler_jobs:
        assert declared.function is not None
        deadline = int(jobs[cloud_name(declared.name)].inputs["attemptDeadline"].rstrip("s"))
        assert deadline == min(functions[declared.function].sizing.timeout_s, 1800)
    assert jobs["retention-purge"].inputs["attemptDeadline"] == "1800s"


def test_firestore_has_point_in_time_recovery_and_bigtable_scheduled_backups(
    program: Program,
) -> None:
    for database in program.of("firestore/database:Database"):
        assert database.inputs["pointInTimeRecoveryEnablement"] == (
            "POINT_IN_TIME_RECOVERY_ENABLED"
        )
    for table in program.of("bigtable/table:Table"):
        policy = table.inputs["automatedBackupPolicy"]
        assert policy == {"frequency": "86400s", "retentionPeriod": "604800s"}


def test_a_replica_zone_adds_a_second_cluster() -> None:
    stack = stack_file("prod")
    single = stack.model_copy(
        update={"bigtable": stack.bigtable.model_copy(update={"replica_zone": None})}
    )
    assert len(build(stack=single).of("bigtable/instance:Instance")[0].inputs["clusters"]) == 1
    (instance,) = build(stack=stack).of("bigtable/instance:Instance")
    zones = [c["zone"] for c in instance.inputs["clusters"]]
    assert zones == ["europe-west1-b", "europe-west1-c"]
    # The components' profile routes to the first cluster, replica or not.
    (profile,) = build(stack=stack).of("bigtable/appProfile:AppProfile")
    assert profile.inputs["singleClusterRouting"]["clusterId"] == "cartwise-c1"
