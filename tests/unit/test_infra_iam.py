"""Least privilege, from the Pulumi program built under mocks: the IAM bindings are
exactly the ones each component's declared access calls for, nothing is public but the
tracker endpoints, and only the rewards code path reaches the rewards database."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cartwise_infra.context import account_id, cloud_name
from shared.platform.resource_model import Access, FirestoreDatabase, Job
from shared.system.resources import (
    BACK_OFFICE_DATABASE,
    BIGQUERY_DATASET,
    CREDENTIALS_DATABASE,
    DEFAULT_DATABASE,
    REWARDS_DATABASE,
    SYSTEM,
    SystemResources,
)
from tests.unit.infra_systems import extended_system, nightly_workflows_dir, with_changes
from tests.unit.pulumi_harness import (
    PROJECT_NUMBER,
    Grant,
    Program,
    build,
    grants_by_member,
    stack_file,
)

PUBLIC = {"allUsers", "allAuthenticatedUsers"}


@pytest.fixture(scope="module")
def program() -> Program:
    return build()


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Program:
    return build(
        extended_system(), workflows_dir=nightly_workflows_dir(tmp_path_factory.mktemp("wf"))
    )


def sa(program: Program, prefix: str, name: str) -> str:
    return f"serviceAccount:{program.account_email(account_id(prefix, name))}"


def expected_grants(program: Program, access: Access) -> set[Grant]:
    """What a declared access means in IAM (the specification the program must meet)."""
    grants: set[Grant] = set()
    grants |= {("roles/pubsub.publisher", f"topic:{t}") for t in access.publishes}
    grants |= {("roles/pubsub.subscriber", f"subscription:{s}") for s in access.subscribes}
    grants |= {("roles/bigtable.reader", f"bigtable:{t}") for t in access.bigtable_reads}
    grants |= {("roles/bigtable.user", f"bigtable:{t}") for t in access.bigtable_writes}
    grants |= {("roles/bigquery.dataViewer", f"dataset:{d}") for d in access.bigquery_reads}
    grants |= {("roles/bigquery.dataEditor", f"dataset:{d}") for d in access.bigquery_writes}
    if access.bigquery_reads or access.bigquery_writes:
        grants.add(("roles/bigquery.jobUser", "project"))
    grants |= {("roles/datastore.viewer", f"firestore:{d}") for d in access.firestore_reads}
    grants |= {("roles/datastore.user", f"firestore:{d}") for d in access.firestore_writes}
    project = program.stack.project
    grants |= {("roles/storage.objectViewer", f"bucket:{project}-{b}") for b in access.bucket_reads}
    grants |= {("roles/storage.objectUser", f"bucket:{project}-{b}") for b in access.bucket_writes}
    grants |= {("roles/secretmanager.secretAccessor", f"secret:{s}") for s in access.secrets}
    grants |= {("roles/run.invoker", f"service:{cloud_name(f)}") for f in access.invokes}
    grants |= {
        ("roles/run.jobsExecutorWithOverrides", f"job:{cloud_name(j)}") for j in access.runs_jobs
    }
    return grants


def intended(program: Program) -> dict[str, set[Grant]]:
    """Every member the program may bind, and exactly what it may get."""
    system = program.system
    want: dict[str, set[Grant]] = {}
    for function in system.functions:
        want[sa(program, "fn", function.name)] = expected_grants(program, function.access)
    for worker in system.workers:
        access = worker.access.model_copy(
            update={"subscribes": (worker.subscription, *worker.access.subscribes)}
        )
        want[sa(program, "wk", worker.name)] = expected_grants(program, access)
    for job in system.jobs:
        want[sa(program, "job", job.name)] = expected_grants(program, job.access)
    declared = {w.name: w for w in system.workflows}
    for workflow in {w.inputs["name"] for w in program.of("workflows/workflow:Workflow")}:
        access = declared[workflow].access if workflow in declared else Access()
        want[sa(program, "wf", workflow)] = expected_grants(program, access)
        if workflow in declared and declared[workflow].schedule:
            want[sa(program, "sch", workflow)] = {("roles/workflows.invoker", "project")}
    for scheduled in system.scheduler_jobs:
        assert scheduled.function is not None
        want[sa(program, "sch", scheduled.name)] = {
            ("roles/run.invoker", f"service:{cloud_name(scheduled.function)}")
        }
    for sub in system.subscriptions:
        if sub.push_function:
            want[sa(program, "push", sub.name)] = {
                ("roles/run.invoker", f"service:{cloud_name(sub.push_function)}")
            }
    want[sa(program, "cw", "build")] = {
        ("roles/storage.objectViewer", f"bucket:{program.stack.project}-cartwise-sources"),
        ("roles/artifactregistry.writer", "repository:cartwise"),
        ("roles/logging.logWriter", "project"),
        ("roles/storage.objectAdmin", "project"),
    }
    scaled = [w.name for w in system.workers if w.cloud_scaling and w.cloud_delivery == "pull"]
    project = program.stack.project
    want[sa(program, "cw", "autoscaler")] = (
        {
            ("roles/parametermanager.parameterViewer", "project"),
            ("roles/monitoring.viewer", "project"),
        }
        | {("roles/run.developer", f"workerpool:{cloud_name(w)}") for w in scaled}
        | {
            (
                "roles/iam.serviceAccountUser",
                f"account:projects/{project}/serviceAccounts/"
                + program.account_email(account_id("wk", w)),
            )
            for w in scaled
        }
    )
    agent = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
    want[agent] = {
        ("roles/pubsub.publisher", f"topic:{s.dead_letter_topic}")
        for s in system.subscriptions
        if s.dead_letter_topic
    } | {
        ("roles/pubsub.subscriber", f"subscription:{s.name}")
        for s in system.subscriptions
        if s.dead_letter_topic
    }
    want["allUsers"] = {
        ("roles/run.invoker", f"service:{cloud_name(f.name)}") for f in system.functions if f.public
    }
    return {member: grants for member, grants in want.items() if grants}


def test_bindings_are_exactly_the_intended_ones(program: Program) -> None:
    assert grants_by_member(program) == intended(program)


def test_bindings_of_the_extended_system_are_exactly_the_intended_ones(extended: Program) -> None:
    assert grants_by_member(extended) == intended(extended)


def test_ingest_and_decide_get_what_they_use_and_nothing_else(program: Program) -> None:
    """Written out by hand from the code's adapters (not derived from the declaration)."""
    grants = grants_by_member(program)
    assert grants[sa(program, "fn", "ingest_events")] == {
        ("roles/pubsub.publisher", "topic:shopper-events"),
        ("roles/pubsub.publisher", "topic:rejected-events"),
        ("roles/bigtable.user", "bigtable:shopper_events"),
        ("roles/bigtable.user", "bigtable:event_ids"),
        ("roles/bigtable.user", "bigtable:event_hours"),
        ("roles/bigtable.user", "bigtable:rejected_events"),
        ("roles/bigtable.user", "bigtable:rate_limits"),
        ("roles/datastore.viewer", "firestore:(default)"),
        ("roles/datastore.viewer", "firestore:credentials"),  # API keys, read only
        ("roles/secretmanager.secretAccessor", "secret:shopper-hash-key"),
    }
    # In the cloud, decide_events is its push form: Pub/Sub pushes, it does not subscribe.
    assert grants[sa(program, "fn", "decide_events")] == {
        ("roles/pubsub.publisher", "topic:shopper-experiences"),
        ("roles/pubsub.publisher", "topic:shopper-events-dead-letter"),
        ("roles/bigtable.reader", "bigtable:experience_trees"),
        ("roles/bigtable.reader", "bigtable:privacy_marks"),  # the shoppers' privacy marks
        ("roles/bigtable.user", "bigtable:shopper_state"),
        ("roles/datastore.viewer", "firestore:(default)"),
        ("roles/bigquery.dataEditor", f"dataset:{BIGQUERY_DATASET}"),
        ("roles/bigquery.jobUser", "project"),
        ("roles/secretmanager.secretAccessor", "secret:play-signing-key"),
        ("roles/secretmanager.secretAccessor", "secret:shopper-hash-key"),  # marks' keys
    }
    assert grants[sa(program, "fn", "experiences")] == {
        ("roles/bigtable.reader", "bigtable:shopper_state"),
        ("roles/bigtable.reader", "bigtable:privacy_marks"),
        ("roles/datastore.viewer", "firestore:(default)"),  # identity versions
        ("roles/datastore.viewer", "firestore:credentials"),  # API keys, read only
        ("roles/secretmanager.secretAccessor", "secret:shopper-identity-key"),  # signatures
        ("roles/secretmanager.secretAccessor", "secret:shopper-hash-key"),  # marks' keys
    }


def test_one_service_account_per_component(extended: Program) -> None:
    accounts = [a.inputs["accountId"] for a in extended.of("serviceaccount/account:Account")]
    assert len(accounts) == len(set(accounts))
    system = extended.system
    components = (
        [sa(extended, "fn", f.name) for f in system.functions]
        + [sa(extended, "wk", w.name) for w in system.workers]
        + [sa(extended, "job", j.name) for j in system.jobs]
    )
    assert len(set(components)) == len(components)
    emails = {f"serviceAccount:{extended.account_email(a)}" for a in accounts}
    assert set(components) <= emails
    runs_as = [
        f.inputs["serviceConfig"]["serviceAccountEmail"]
        for f in extended.of("cloudfunctionsv2/function:Function")
    ]
    runs_as += [p.inputs["template"]["serviceAccount"] for p in extended.of("WorkerPool")]
    runs_as += [
        j.inputs["template"]["template"]["serviceAccount"]
        for j in extended.of("cloudrunv2/job:Job")
    ]
    assert len(runs_as) == len(set(runs_as)) == len(components)


def test_nothing_is_public_but_the_tracker_endpoints_and_the_back_office(
    program: Program,
) -> None:
    """Public at the network level, each of these checks its own credentials: retailers'
    API keys (trackers), CSM access keys (the campaigns back office, opened in browsers)."""
    public = [m for m in program.iam_members() if m.inputs["member"] in PUBLIC]
    assert {(m.type.rsplit(":", 1)[-1], m.inputs["role"], m.inputs["name"]) for m in public} == {
        ("ServiceIamMember", "roles/run.invoker", "ingest-events"),
        ("ServiceIamMember", "roles/run.invoker", "experiences"),
        ("ServiceIamMember", "roles/run.invoker", "campaigns"),
        ("ServiceIamMember", "roles/run.invoker", "plays"),
        ("ServiceIamMember", "roles/run.invoker", "erasure-requests"),
    }
    assert {f.name for f in SYSTEM.functions if f.public} == {
        "ingest_events",
        "experiences",
        "campaigns",
        "plays",
        "erasure_requests",
    }


def test_the_campaigns_function_reads_the_warehouse_and_credentials_and_writes_campaigns(
    program: Program,
) -> None:
    """Written out by hand from its adapters: campaigns and audit in Firestore (default),
    sessions in the back-office database, CSM accounts read (never written) from the
    credentials database, reports read from BigQuery, changes published for the
    recompilation of default trees; never the rewards database."""
    grants = grants_by_member(program)
    assert grants[sa(program, "fn", "campaigns")] == {
        ("roles/pubsub.publisher", "topic:campaign-changes"),
        ("roles/datastore.user", "firestore:(default)"),
        ("roles/datastore.user", f"firestore:{BACK_OFFICE_DATABASE}"),
        ("roles/datastore.viewer", f"firestore:{CREDENTIALS_DATABASE}"),
        ("roles/bigquery.dataViewer", f"dataset:{BIGQUERY_DATASET}"),
        ("roles/bigquery.jobUser", "project"),
    }


def test_the_tree_recompiler_reads_campaigns_and_writes_trees_only(program: Program) -> None:
    """Written out by hand from its adapters: active campaigns read from Firestore
    (default), default trees written to Bigtable, bad changes dead-lettered (topic and the
    dead-letter counts); nothing of shoppers', no secret."""
    grants = grants_by_member(program)
    assert grants[sa(program, "wk", "recompile_trees")] == {
        ("roles/pubsub.subscriber", "subscription:campaign-changes-recompile"),
        ("roles/pubsub.publisher", "topic:campaign-changes-dead-letter"),
        ("roles/datastore.viewer", "firestore:(default)"),
        ("roles/bigtable.user", "bigtable:experience_trees"),
        ("roles/bigquery.dataEditor", f"dataset:{BIGQUERY_DATASET}"),
        ("roles/bigquery.jobUser", "project"),
    }


def test_no_unconditional_project_role_beyond_jobs_logs_and_workflow_starts(
    extended: Program,
) -> None:
    """Data access is granted on each resource; Firestore (project-wide in IAM) only under
    a condition naming one database."""
    for member in extended.of("projects/iAMMember:IAMMember"):
        role = member.inputs["role"]
        if role.startswith("roles/datastore."):
            expression = member.inputs["condition"]["expression"]
            assert expression.startswith(
                f'resource.name == "projects/{extended.stack.project}/databases/'
            ), member
        else:
            assert "condition" not in member.inputs or member.inputs["condition"] is None
            assert role in {
                "roles/bigquery.jobUser",
                "roles/logging.logWriter",
                "roles/storage.objectAdmin",
                "roles/workflows.invoker",
                # The backlog autoscaler (CREMA): its config and the backlog metrics.
                "roles/parametermanager.parameterViewer",
                "roles/monitoring.viewer",
            }, member


def test_only_the_rewards_game_reaches_the_rewards_database(program: Program) -> None:
    reaching = {
        m.inputs["member"]
        for m in program.iam_members()
        if f"/databases/{REWARDS_DATABASE}"
        in str((m.inputs.get("condition") or {}).get("expression"))
    }
    assert reaching == {
        sa(program, "fn", "plays"),
        sa(program, "wk", "void_plays"),
        sa(program, "fn", "privacy_maintenance"),  # erasure and purge of the vault
    }


def test_the_rewards_game_gets_what_it_uses_and_nothing_else(program: Program) -> None:
    """Written out by hand from the code's adapters (not derived from the declaration)."""
    grants = grants_by_member(program)
    both_databases = {
        ("roles/datastore.user", "firestore:(default)"),  # keys, campaigns; budget_exhausted
        ("roles/datastore.user", f"firestore:{REWARDS_DATABASE}"),
    }
    assert grants[sa(program, "fn", "plays")] == both_databases | {
        ("roles/datastore.viewer", f"firestore:{CREDENTIALS_DATABASE}"),  # API keys
        ("roles/pubsub.publisher", "topic:plays"),
        ("roles/secretmanager.secretAccessor", "secret:play-signing-key"),
        ("roles/secretmanager.secretAccessor", "secret:shopper-identity-key"),  # signatures
        ("roles/bigtable.reader", "bigtable:privacy_marks"),  # no play once objected
        ("roles/secretmanager.secretAccessor", "secret:shopper-hash-key"),  # marks' keys
    }
    assert grants[sa(program, "wk", "void_plays")] == both_databases | {
        ("roles/pubsub.subscriber", "subscription:shopper-events-void-plays"),
        ("roles/pubsub.publisher", "topic:plays"),
        ("roles/pubsub.publisher", "topic:shopper-events-dead-letter"),
        ("roles/bigquery.dataEditor", f"dataset:{BIGQUERY_DATASET}"),
        ("roles/bigquery.jobUser", "project"),
    }
    assert grants[sa(program, "wk", "freeze_plays")] == {
        ("roles/pubsub.subscriber", "subscription:plays-freezer"),
        ("roles/pubsub.publisher", "topic:plays-dead-letter"),
        ("roles/bigquery.dataEditor", f"dataset:{BIGQUERY_DATASET}"),
        ("roles/bigquery.jobUser", "project"),
        ("roles/bigtable.reader", "bigtable:privacy_marks"),  # a play from before an erasure
        ("roles/secretmanager.secretAccessor", "secret:shopper-hash-key"),
    }


def test_only_the_rewards_path_reaches_the_rewards_database(extended: Program) -> None:
    reaching = {
        m.inputs["member"]
        for m in extended.iam_members()
        if f"/databases/{REWARDS_DATABASE}"
        in str((m.inputs.get("condition") or {}).get("expression"))
    }
    assert reaching == {
        sa(extended, "job", "pay_winners"),
        sa(extended, "fn", "plays"),
        sa(extended, "wk", "void_plays"),
        sa(extended, "fn", "privacy_maintenance"),  # erasure and purge of the vault
    }
    default_readers = {
        m.inputs["member"]
        for m in extended.iam_members()
        if f"/databases/{DEFAULT_DATABASE}"
        in str((m.inputs.get("condition") or {}).get("expression"))
    }
    assert sa(extended, "job", "pay_winners") not in default_readers


def test_a_component_outside_the_rewards_path_cannot_declare_the_rewards_database() -> None:
    rewards = FirestoreDatabase(name=REWARDS_DATABASE, description="", reserved_for=("pay",))
    with pytest.raises(ValidationError, match="reserved"):
        with_changes(
            firestore_databases=(rewards,),
            jobs=(
                Job(
                    name="compile_trees",
                    module="functions.nightly.compile",
                    access=Access(firestore_reads=(REWARDS_DATABASE,)),
                ),
            ),
        )


def reaching(program: Program, database: str) -> dict[str, set[str]]:
    """Members granted on a Firestore database, with their roles."""
    found: dict[str, set[str]] = {}
    for m in program.iam_members():
        expression = str((m.inputs.get("condition") or {}).get("expression"))
        if expression.endswith(f'/databases/{database}"'):
            found.setdefault(m.inputs["member"], set()).add(m.inputs["role"])
    return found


def test_no_deployed_component_can_write_the_credentials_database(extended: Program) -> None:
    """API keys and CSM accounts: the functions that authenticate callers read them, none
    can write them (code run in a public function cannot mint a key or an admin)."""
    granted = reaching(extended, CREDENTIALS_DATABASE)
    assert granted == {
        sa(extended, "fn", name): {"roles/datastore.viewer"}
        for name in (
            "ingest_events",
            "experiences",
            "campaigns",
            "plays",
            "erasure_requests",
            "privacy_maintenance",
        )
    }
    public = {f.name for f in extended.system.functions if f.public}
    for name in public:
        member = sa(extended, "fn", name)
        assert "roles/datastore.user" not in granted.get(member, set()), name
        # Nor project-wide data access (a condition-less datastore role).
        for m in extended.iam_members():
            if m.inputs["member"] == member and m.inputs["role"].startswith("roles/datastore"):
                assert m.inputs.get("condition"), m


def test_only_the_campaigns_function_reaches_the_back_office_sessions(program: Program) -> None:
    assert reaching(program, BACK_OFFICE_DATABASE) == {
        sa(program, "fn", "campaigns"): {"roles/datastore.user"}
    }


def test_the_stacks_credential_issuers_write_the_credentials_database_only() -> None:
    """The operators who run ``cartwise api-key`` and ``cartwise csm-key``: datastore.user
    on the credentials database, under a condition naming it; nothing else."""
    issuers = ("group:cartwise-operators@example.com", "user:ops@example.com")
    stack = stack_file("prod").model_copy(update={"credential_issuers": issuers})
    program = build(stack=stack)
    granted = reaching(program, CREDENTIALS_DATABASE)
    for issuer in issuers:
        assert granted[issuer] == {"roles/datastore.user"}
        assert {
            (m.inputs["role"], str((m.inputs.get("condition") or {}).get("expression")))
            for m in program.iam_members()
            if m.inputs["member"] == issuer
        } == {
            (
                "roles/datastore.user",
                f'resource.name == "projects/{stack.project}/databases/{CREDENTIALS_DATABASE}"',
            )
        }


def test_a_component_cannot_declare_write_on_the_credentials_database() -> None:
    functions = tuple(
        f.model_copy(
            update={
                "access": f.access.model_copy(
                    update={"firestore_writes": (*f.access.firestore_writes, CREDENTIALS_DATABASE)}
                )
            }
        )
        if f.name == "campaigns"
        else f
        for f in SYSTEM.functions
    )
    with pytest.raises(ValidationError, match="campaigns declares write access"):
        with_changes(functions=functions)


def test_the_signing_key_reaches_decide_events_and_plays_only(program: Program) -> None:
    """decide_events signs play tokens, plays verifies them."""
    holders = {
        m.inputs["member"]
        for m in program.iam_members()
        if m.inputs["role"] == "roles/secretmanager.secretAccessor"
        and "play-signing-key" in str(m.inputs.get("secretId", m.inputs))
    }
    assert holders == {sa(program, "fn", "decide_events"), sa(program, "fn", "plays")}


def test_the_shopper_hash_key_reaches_the_privacy_path_and_the_mark_readers_only(
    program: Program,
) -> None:
    """The privacy path, ingest (objections), and every component that reads privacy marks
    (docs/PRIVACY.md): nothing else can hash shoppers."""
    holders = {
        m.inputs["member"]
        for m in program.iam_members()
        if m.inputs["role"] == "roles/secretmanager.secretAccessor"
        and "shopper-hash-key" in str(m.inputs.get("secretId", m.inputs))
    }
    functions = ("ingest_events", "erasure_requests", "privacy_maintenance", "experiences")
    mark_readers = ("plays", "nightly_steps", "decide_events")  # the decider: push form
    workers = ("freeze_events", "freeze_decisions", "freeze_plays")
    jobs = ("nightly_shards",)  # compiles personal trees: reads the marks too
    assert holders == {sa(program, "fn", n) for n in (*functions, *mark_readers)} | {
        sa(program, "wk", n) for n in workers
    } | {sa(program, "job", n) for n in jobs}


def test_declared_access_points_at_declared_resources() -> None:
    """A typo in an access declaration would grant nothing (or fail at deploy time)."""
    system: SystemResources = SYSTEM
    topics = {t.name for t in system.topics}
    subscriptions = {s.name for s in system.subscriptions}
    tables = {t.name for t in system.bigtable_tables}
    datasets = {d.name for d in system.bigquery_datasets}
    databases = {d.name for d in system.firestore_databases}
    secrets = {s.name for s in system.secrets}
    functions = {f.name for f in system.functions}
    for name, access in system.accesses().items():
        assert set(access.publishes) <= topics, name
        assert set(access.subscribes) <= subscriptions, name
        assert set(access.bigtable_reads) | set(access.bigtable_writes) <= tables, name
        assert set(access.bigquery_reads) | set(access.bigquery_writes) <= datasets, name
        assert set(access.firestore_databases()) <= databases, name
        assert set(access.secrets) <= secrets, name
        assert set(access.invokes) <= functions, name


def test_push_subscriptions_authenticate_as_their_own_invoker(extended: Program) -> None:
    sub = extended.named("pubsub/subscription:Subscription")["shopper-events-freezer"]
    push = sub.inputs["pushConfig"]
    pusher = extended.account_email(account_id("push", "shopper-events-freezer"))
    assert push["oidcToken"]["serviceAccountEmail"] == pusher
    url = extended.named("cloudfunctionsv2/function:Function")["freeze-events"]
    assert push["pushEndpoint"].startswith("https://freeze-events-")
    assert push["pushEndpoint"].endswith(
        f"/projects/{extended.stack.project}/topics/shopper-events"
    )
    assert url.inputs["serviceConfig"]["serviceAccountEmail"] != pusher


def test_workflow_reaching_undeclared_function_is_refused(tmp_path: Path) -> None:
    from tests.unit.infra_systems import NIGHTLY_WORKFLOW

    system = extended_system()
    no_invoke = with_changes(
        **{
            **{k: getattr(system, k) for k in ("functions", "workers", "jobs", "buckets")},
            "subscriptions": system.subscriptions,
            "firestore_databases": system.firestore_databases,
            "workflows": tuple(
                w.model_copy(update={"access": Access(runs_jobs=("train",))})
                for w in system.workflows
            ),
        }
    )
    with pytest.raises(Exception, match="calls experiences"):
        build(no_invoke, workflows_dir=nightly_workflows_dir(tmp_path, NIGHTLY_WORKFLOW))


def test_every_component_declares_its_access() -> None:
    """A function, worker or job added without ``access`` would be deployed with no rights
    and fail at its first call: declare what it uses (docs/DEPLOY.md, least privilege)."""
    undeclared = [
        name
        for name, access in SYSTEM.accesses().items()
        if access == Access() and not name.startswith("workflow:")
    ]
    assert undeclared == []


def test_access_to_an_undeclared_resource_is_refused_before_anything_is_declared() -> None:
    from tests.unit.pulumi_harness import RecordingMocks

    workers = tuple(
        w.model_copy(update={"access": w.access.model_copy(update={"publishes": ("typo",)})})
        if w.name == "freeze_decisions"
        else w
        for w in SYSTEM.workers
    )
    mocks = RecordingMocks("p", "europe-west1")
    with pytest.raises(ValueError, match="freeze_decisions: publishes 'typo'"):
        build(with_changes(workers=workers), mocks=mocks)
    assert mocks.registered == []
