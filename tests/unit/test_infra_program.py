"""The Pulumi program deploys exactly what SYSTEM declares (and what workflows/ holds),
each function with its trigger, each worker with its subscription, every subscription
with its retry and dead-letter policies."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest

from cartwise_infra.context import account_id, cloud_name
from cartwise_infra.orchestration import workflow_files
from cartwise_infra.shape import cloud_shape
from shared.platform.resource_model import Topic
from shared.system.resources import SYSTEM
from tests.unit.infra_systems import NIGHTLY_WORKFLOW, extended_system, nightly_workflows_dir
from tests.unit.pulumi_harness import ROOT, Program, build, extended_build, system_build


@pytest.fixture
def program() -> Program:
    return system_build()


@pytest.fixture
def extended() -> Program:
    return extended_build()


def deployed_vs_declared(program: Program) -> dict[str, tuple[set[str], set[str]]]:
    """(deployed, declared) names for every kind of declared resource."""
    system = program.system
    gc_declared = {
        f"{t.name}/{f.name}"
        for t in system.bigtable_tables
        for f in t.families
        if f.gc.max_versions is not None or f.gc.max_age_days is not None
    }
    gc_deployed = {
        f"{p.inputs['table']}/{p.inputs['columnFamily']}" for p in program.of("GCPolicy")
    }
    schedules = {cloud_name(j.name) for j in system.scheduler_jobs} | {
        cloud_name(f"{w.name}-schedule") for w in system.workflows if w.schedule
    }

    def names(kind: str, key: str = "name") -> set[str]:
        return {str(r.inputs[key]) for r in program.of(kind)}

    return {
        "topics": (names("pubsub/topic:Topic"), {t.name for t in system.topics}),
        "subscriptions": (
            names("pubsub/subscription:Subscription"),
            {s.name for s in system.subscriptions},
        ),
        "bigtable instance": (names("bigtable/instance:Instance"), {system.bigtable_instance}),
        "bigtable tables": (
            names("bigtable/table:Table"),
            {t.name for t in system.bigtable_tables},
        ),
        "bigtable gc rules": (gc_deployed, gc_declared),
        "bigquery datasets": (
            names("bigquery/dataset:Dataset", "datasetId"),
            {d.name for d in system.bigquery_datasets},
        ),
        "bigquery tables": (
            {
                f"{t.inputs['datasetId']}.{t.inputs['tableId']}"
                for t in program.of("bigquery/table:Table")
            },
            {f"{t.dataset}.{t.name}" for t in system.bigquery_tables},
        ),
        "firestore databases": (
            names("firestore/database:Database"),
            {d.name for d in system.firestore_databases},
        ),
        "functions": (
            names("cloudfunctionsv2/function:Function"),
            {cloud_name(f.name) for f in system.functions},
        ),
        "workers": (names("WorkerPool"), {cloud_name(w.name) for w in system.workers}),
        "jobs": (names("cloudrunv2/job:Job"), {cloud_name(j.name) for j in system.jobs}),
        "secrets": (names("secret:Secret", "secretId"), {s.name for s in system.secrets}),
        "buckets": (
            names("storage/bucket:Bucket") - {f"{program.stack.project}-cartwise-sources"},
            {f"{program.stack.project}-{b.name}" for b in system.buckets},
        ),
        "scheduler jobs": (names("cloudscheduler/job:Job"), schedules),
    }


@pytest.mark.parametrize("which", ["system", "extended"])
def test_everything_declared_is_deployed_and_nothing_else(which: str) -> None:
    """Fails when a resource is declared locally but not in the Pulumi program, or the
    reverse."""
    program = system_build() if which == "system" else extended_build()
    for kind, (deployed, declared) in deployed_vs_declared(program).items():
        assert deployed == declared, kind


def test_the_comparison_catches_a_resource_missing_from_either_side(program: Program) -> None:
    """Not vacuous: a program that deploys one table less, or one topic more, than
    SYSTEM declares is caught."""
    from tests.unit.infra_systems import with_changes

    def mismatches(built: Program) -> set[str]:
        judged = dataclasses.replace(built, system=cloud_shape(SYSTEM))
        return {k for k, (dep, dec) in deployed_vs_declared(judged).items() if dep != dec}

    assert mismatches(program) == set()
    one_table_less = with_changes(bigquery_tables=SYSTEM.bigquery_tables[1:])
    assert mismatches(build(one_table_less)) == {"bigquery tables"}
    extra = Topic(name="not-declared")
    assert mismatches(build(with_changes(topics=(*SYSTEM.topics, extra)))) == {"topics"}


def test_every_function_folder_is_deployed() -> None:
    """Each folder of functions/ is a declared function, pull worker or job."""
    system = extended_system()
    folders = {
        p.name
        for p in (ROOT / "functions").iterdir()
        if p.is_dir() and ((p / "main.py").is_file() or (p / "worker.py").is_file())
    }
    declared = {f.name for f in SYSTEM.functions} | {w.name for w in SYSTEM.workers}
    declared |= {j.module.split(".")[1] for j in SYSTEM.jobs}
    assert folders == declared
    for worker in system.workers:
        assert (ROOT / "functions" / worker.name / "worker.py").is_file()


def test_http_functions_run_as_their_own_account_with_their_entry_point(program: Program) -> None:
    functions = program.named("cloudfunctionsv2/function:Function")
    for declared in SYSTEM.functions:
        deployed = functions[cloud_name(declared.name)].inputs
        build_config, service = deployed["buildConfig"], deployed["serviceConfig"]
        assert build_config["entryPoint"] == declared.entry_point
        assert build_config["runtime"] == "python311"
        assert service["serviceAccountEmail"] == program.account_email(
            account_id("fn", declared.name)
        )
        assert service["maxInstanceCount"] == declared.sizing.max_instances
        assert service["minInstanceCount"] == declared.sizing.min_instances
        assert service["maxInstanceRequestConcurrency"] == declared.sizing.concurrency
        assert service["availableMemory"] == declared.sizing.memory
        assert build_config["source"]["storageSource"]["object"].startswith(
            f"functions/{declared.name}-"
        )


def test_the_experiences_function_serves_as_many_waits_as_it_admits(program: Program) -> None:
    """A ``?after=`` wait holds a thread: functions-framework's default (4 threads per CPU)
    would queue the 5th of 80 admitted requests behind the others' waits."""
    deployed = program.named("cloudfunctionsv2/function:Function")["experiences"].inputs
    service = deployed["serviceConfig"]
    threads = int(service["environmentVariables"]["THREADS"])
    assert threads == service["maxInstanceRequestConcurrency"] == 80
    ingest = program.named("cloudfunctionsv2/function:Function")["ingest-events"].inputs
    assert "THREADS" not in ingest["serviceConfig"]["environmentVariables"]


def test_ingest_is_sized_for_the_peak(program: Program) -> None:
    ingest = program.named("cloudfunctionsv2/function:Function")["ingest-events"].inputs
    service = ingest["serviceConfig"]
    # 10,000 events/s in requests of a few events: ~100 instances x 80 requests in flight.
    assert service["maxInstanceCount"] * service["maxInstanceRequestConcurrency"] >= 5_000
    assert service["minInstanceCount"] >= 1  # no cold start for the first tracker


def test_a_cloudevent_function_is_triggered_by_its_push_subscription(extended: Program) -> None:
    function = extended.named("cloudfunctionsv2/function:Function")["freeze-events"].inputs
    assert function["serviceConfig"]["environmentVariables"]["FUNCTION_SIGNATURE_TYPE"] == (
        "cloudevent"
    )
    sub = extended.named("pubsub/subscription:Subscription")["shopper-events-freezer"].inputs
    assert sub["pushConfig"]["pushEndpoint"].startswith("https://freeze-events-")
    assert sub["deadLetterPolicy"]["deadLetterTopic"].endswith("/topics/shopper-events-dead-letter")


def test_pull_workers_are_worker_pools_on_their_subscription(program: Program) -> None:
    pools = program.named("WorkerPool")
    assert {cloud_name(w.name) for w in program.system.workers} == set(pools)
    for worker in program.system.workers:
        pool = pools[cloud_name(worker.name)].inputs
        container = pool["template"]["containers"][0]
        assert container["args"] == ["-m", f"functions.{worker.name}.worker"]
        assert (
            container["image"].split(":")[-1]
            == program.of("local:Command")[0].inputs["triggers"][0]
        )
        scaling = worker.cloud_scaling
        start = worker.instances if scaling is None else scaling.min_instances
        assert pool["scaling"]["manualInstanceCount"] == start
        assert "ports" not in container  # no HTTP: nothing to invoke
    # Nobody invokes a pool; the backlog autoscaler alone may set the scaled ones' counts.
    scaled = {cloud_name(w.name) for w in program.system.workers if w.cloud_scaling}
    grants = program.of("workerPoolIamMember:WorkerPoolIamMember")
    assert {m.inputs["name"] for m in grants} == scaled
    assert {m.inputs["role"] for m in grants} == {"roles/run.developer"}


def test_subscriptions_have_retry_and_dead_letter_policies(program: Program) -> None:
    subs = program.named("pubsub/subscription:Subscription")
    consumed = {w.subscription for w in SYSTEM.workers}
    dead_letter_topics = {s.dead_letter_topic for s in SYSTEM.subscriptions if s.dead_letter_topic}
    for declared in SYSTEM.subscriptions:
        deployed = subs[declared.name].inputs
        assert deployed["retryPolicy"] == {
            "minimumBackoff": f"{declared.retry.minimum_backoff_s}s",
            "maximumBackoff": f"{declared.retry.maximum_backoff_s}s",
        }
        assert deployed["enableMessageOrdering"] == declared.enable_message_ordering
        assert deployed["expirationPolicy"] == {"ttl": ""}  # never expires
        policy = deployed["deadLetterPolicy"]  # every subscription, consumed or not
        assert policy["deadLetterTopic"].endswith(f"/topics/{declared.dead_letter_topic}")
        assert policy["maxDeliveryAttempts"] == declared.max_delivery_attempts
        if declared.name not in consumed:
            # Read by operators only (cartwise redrive-dead-letters): dead letters, or the
            # rejected events' record; a message they fail 100 times is queued again.
            assert declared.topic in dead_letter_topics | {"rejected-events"}, declared.name
            assert declared.dead_letter_topic == declared.topic, declared.name
    assert subs["shopper-events-decide"].inputs["enableMessageOrdering"] is True
    for topic in dead_letter_topics:
        assert any(s.topic == topic for s in SYSTEM.subscriptions), topic


def test_a_consumed_subscription_without_dead_letter_topic_is_refused() -> None:
    from tests.unit.infra_systems import with_changes

    subs = tuple(
        s.model_copy(update={"dead_letter_topic": None}) if s.name == "shopper-events-decide" else s
        for s in SYSTEM.subscriptions
    )
    with pytest.raises(Exception, match="no dead-letter topic"):
        build(with_changes(subscriptions=subs))


def test_workflows_are_deployed_from_their_files(extended: Program) -> None:
    (workflow,) = extended.of("workflows/workflow:Workflow")
    assert workflow.inputs["name"] == "nightly"
    assert workflow.inputs["sourceContents"] == NIGHTLY_WORKFLOW
    env = workflow.inputs["userEnvVars"]
    assert env["CARTWISE_EXPERIENCES_URL"].startswith("https://experiences-")
    assert env["CARTWISE_INGEST_EVENTS_URL"].startswith("https://ingest-events-")
    assert workflow.inputs["serviceAccount"].endswith(
        extended.account_email(account_id("wf", "nightly"))
    )


def test_the_repository_workflows_are_all_deployed(program: Program) -> None:
    files = workflow_files(ROOT / "workflows")
    assert {w.inputs["name"] for w in program.of("workflows/workflow:Workflow")} == {
        cloud_name(name) for name in files
    }


def test_scheduled_workflow_starts_an_execution_of_that_workflow(extended: Program) -> None:
    job = extended.named("cloudscheduler/job:Job")["nightly-schedule"].inputs
    target = job["httpTarget"]
    assert target["uri"] == (
        "https://workflowexecutions.googleapis.com/v1/projects/"
        f"{extended.stack.project}/locations/{extended.stack.region}/workflows/nightly/executions"
    )
    assert json.loads(base64.b64decode(target["body"])) == {"argument": "{}"}
    assert job["schedule"] == "0 2 * * *"
    assert job["timeZone"] == "Europe/Paris"
    assert target["oauthToken"]["serviceAccountEmail"] == extended.account_email(
        account_id("sch", "nightly")
    )


def test_scheduled_call_reaches_its_function_with_oidc(extended: Program) -> None:
    job = extended.named("cloudscheduler/job:Job")["purge"].inputs
    target = job["httpTarget"]
    assert target["uri"].startswith("https://experiences-") and target["uri"].endswith("/p")
    assert target["oidcToken"]["audience"] + "/p" == target["uri"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            NIGHTLY_WORKFLOW.replace("CARTWISE_EXPERIENCES_URL", "NO_SUCH_URL"),
            "unknown variable NO_SUCH_URL",
        ),
        (NIGHTLY_WORKFLOW.replace("/jobs/train", "/jobs/score"), "unknown job score"),
    ],
)
def test_a_workflow_referencing_what_does_not_exist_is_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(Exception, match=problem):
        build(extended_system(), workflows_dir=nightly_workflows_dir(tmp_path, text))


def test_a_refused_program_declares_no_resource(tmp_path: Path) -> None:
    """Checks run first: `pulumi up` stops before creating or changing anything."""
    from tests.unit.pulumi_harness import RecordingMocks

    mocks = RecordingMocks("p", "europe-west1")
    bad = NIGHTLY_WORKFLOW.replace("/jobs/train", "/jobs/score")
    with pytest.raises(Exception, match="unknown job score"):
        build(extended_system(), workflows_dir=nightly_workflows_dir(tmp_path, bad), mocks=mocks)
    assert mocks.registered == []


def test_a_declared_workflow_without_its_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "workflows"
    empty.mkdir()
    with pytest.raises(Exception, match="without a file"):
        build(extended_system(), workflows_dir=empty)


def test_main_deploys_a_stack_from_its_pulumi_yaml() -> None:
    """``__main__.py`` as the Pulumi CLI runs it, with Pulumi.dev.yaml as configuration."""
    import runpy

    import pulumi
    import yaml

    from tests.unit.pulumi_harness import PULUMI_DIR, RecordingMocks

    values = yaml.safe_load((PULUMI_DIR / "Pulumi.dev.yaml").read_text())["config"]
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    keys = [f"cartwise:{s.name}" for s in SYSTEM.secrets]
    config.update({key: f"a-dev-value-of-32-characters-{n}!" for n, key in enumerate(keys)})
    mocks = RecordingMocks(values["gcp:project"], values["cartwise:region"])
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="cartwise", stack="dev", preview=False)
    pulumi.runtime.set_all_config(config, secret_keys=keys)
    try:

        @pulumi.runtime.test  # type: ignore[untyped-decorator]
        def run() -> None:
            runpy.run_path(str(PULUMI_DIR / "__main__.py"), run_name="__main__")

        run()
    finally:
        pulumi.runtime.set_all_config({})
    functions = {
        r.inputs["name"]: r.inputs
        for r in mocks.registered
        if r.type.endswith("v2/function:Function")
    }
    assert set(functions) == {cloud_name(f.name) for f in cloud_shape(SYSTEM).functions}
    assert functions["ingest-events"]["project"] == values["gcp:project"]
    assert functions["ingest-events"]["serviceConfig"]["maxInstanceCount"] == 2
    # The configured signing key becomes a secret version; a rotated-out one is disabled.
    versions = {
        r.inputs["secret"]: r.inputs
        for r in mocks.registered
        if r.type.endswith("secretVersion:SecretVersion")
    }
    version = versions[f"projects/{values['gcp:project']}/secrets/play-signing-key"]
    assert version["deletionPolicy"] == "DISABLE"
    assert len(versions) == len(SYSTEM.secrets)


def test_the_decider_runs_as_its_push_form_in_the_cloud(program: Program) -> None:
    """Cloud Run scales the push-fed decider on requests in flight (docs/CAPACITY.md);
    its subscription pushes to it, ordered, with its dead-letter policy; the local stack
    pulls the same subscription (SYSTEM's worker), the same service function behind both."""
    decider = next(w for w in SYSTEM.workers if w.name == "decide_events")
    assert decider.cloud_delivery == "push"
    function = program.named("cloudfunctionsv2/function:Function")["decide-events"].inputs
    assert function["buildConfig"]["entryPoint"] == "decide_event"
    service = function["serviceConfig"]
    assert decider.push_sizing is not None
    assert service["maxInstanceCount"] == decider.push_sizing.max_instances
    assert service["environmentVariables"]["THREADS"] == str(decider.push_sizing.threads)
    sub = program.named("pubsub/subscription:Subscription")["shopper-events-decide"].inputs
    assert sub["pushConfig"]["pushEndpoint"].startswith("https://decide-events-")
    assert sub["enableMessageOrdering"] is True
    assert "decide-events" not in program.named("WorkerPool")
    assert (ROOT / "functions" / "decide_events" / "main.py").is_file()
