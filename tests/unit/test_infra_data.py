"""The stores as deployed: BigQuery partition expiration from the retention configuration,
Bigtable autoscaling and GC rules, Firestore databases, secrets; the two stacks."""

from __future__ import annotations

import pytest

from shared.system.resources import (
    BACK_OFFICE_DATABASE,
    CREDENTIALS_DATABASE,
    REWARDS_DATABASE,
    SYSTEM,
)
from tests.unit.pulumi_harness import Program, build, stack_file, system_build

DAY_MS = 86_400_000


@pytest.fixture
def program() -> Program:
    return system_build()


@pytest.fixture(scope="module")
def dev() -> Program:
    return build(stack=stack_file("dev"))


def test_prod_partitions_expire_after_the_declared_retention(program: Program) -> None:
    """Prod keeps read models as long as raw events: 1,000 days (docs: PRODUCT)."""
    tables = program.of("bigquery/table:Table")
    partitioned = [t for t in tables if t.inputs.get("timePartitioning")]
    declared = {(t.dataset, t.name): t for t in SYSTEM.bigquery_tables}
    assert len(partitioned) == sum(1 for t in SYSTEM.bigquery_tables if t.partition_field)
    for table in partitioned:
        decl = declared[(table.inputs["datasetId"], table.inputs["tableId"])]
        partitioning = table.inputs["timePartitioning"]
        assert partitioning["field"] == decl.partition_field
        assert partitioning["type"] == "DAY"
        assert partitioning["expirationMs"] == 1000 * DAY_MS
        assert table.inputs.get("clusterings") == (list(decl.clustering) or None)
    (dataset,) = program.of("bigquery/dataset:Dataset")
    assert dataset.inputs["defaultPartitionExpirationMs"] == 1000 * DAY_MS


def test_dev_retention_caps_partition_expiration(dev: Program) -> None:
    assert dev.stack.retention_days == {"cartwise": 30}
    for table in dev.of("bigquery/table:Table"):
        partitioning = table.inputs.get("timePartitioning")
        if partitioning:
            assert partitioning["expirationMs"] == 30 * DAY_MS, table.name
    (dataset,) = dev.of("bigquery/dataset:Dataset")
    assert dataset.inputs["defaultPartitionExpirationMs"] == 30 * DAY_MS


def test_a_table_shorter_retention_is_kept_under_the_stack_cap() -> None:
    from tests.unit.infra_systems import with_changes

    tables = tuple(
        t.model_copy(update={"partition_expiration_days": 10}) if t.name == "dead_letters" else t
        for t in SYSTEM.bigquery_tables
    )
    # dev caps the dataset at 30 days; the table's own 10 days stay.
    for stack, days in (("dev", 10),):
        built = build(with_changes(bigquery_tables=tables), stack=stack_file(stack))
        dead = next(
            t for t in built.of("bigquery/table:Table") if t.inputs["tableId"] == "dead_letters"
        )
        assert dead.inputs["timePartitioning"]["expirationMs"] == days * DAY_MS


def test_bigquery_schemas_are_the_declared_columns(program: Program) -> None:
    import json

    deployed = {
        (t.inputs["datasetId"], t.inputs["tableId"]): json.loads(t.inputs["schema"])
        for t in program.of("bigquery/table:Table")
    }
    for table in SYSTEM.bigquery_tables:
        columns = deployed[(table.dataset, table.name)]
        assert [(c["name"], c["type"], c["mode"]) for c in columns] == [
            (c.name, c.type, c.mode) for c in table.columns
        ]


def test_bigtable_autoscales_within_the_stack_bounds(program: Program, dev: Program) -> None:
    for built, low, high, zones in (
        (program, 3, 30, ["europe-west1-b", "europe-west1-c"]),  # prod: a standby replica
        (dev, 1, 1, ["europe-west1-b"]),
    ):
        (instance,) = built.of("bigtable/instance:Instance")
        clusters = instance.inputs["clusters"]
        assert [c["zone"] for c in clusters] == zones
        for cluster in clusters:
            scaling = cluster["autoscalingConfig"]
            assert (scaling["minNodes"], scaling["maxNodes"]) == (low, high)
            assert 10 <= scaling["cpuTarget"] <= 80


def test_bigtable_gc_rules_are_the_declared_ones(program: Program) -> None:
    policies = {
        (p.inputs["table"], p.inputs["columnFamily"]): p.inputs for p in program.of("GCPolicy")
    }
    for table in SYSTEM.bigtable_tables:
        for family in table.families:
            policy = policies.get((table.name, family.name))
            gc = family.gc
            if gc.max_versions is None and gc.max_age_days is None:
                assert policy is None
                continue
            assert policy is not None
            versions = policy.get("maxVersions")
            assert (versions[0]["number"] if versions else None) == gc.max_versions
            age = policy.get("maxAge")
            expected_age = None if gc.max_age_days is None else f"{gc.max_age_days * 24}h"
            assert (age["duration"] if age else None) == expected_age
            both = gc.max_versions is not None and gc.max_age_days is not None
            assert policy.get("mode") == ("UNION" if both else None)
    # Raw events: 1,000 days, one version.
    assert policies[("shopper_events", "event")]["maxAge"] == {"duration": "24000h"}


def test_firestore_default_rewards_credentials_and_back_office_databases(
    program: Program,
) -> None:
    databases = program.named("firestore/database:Database")
    assert set(databases) == {
        "(default)",
        REWARDS_DATABASE,
        CREDENTIALS_DATABASE,
        BACK_OFFICE_DATABASE,
    }
    for database in databases.values():
        assert database.inputs["type"] == "FIRESTORE_NATIVE"
        assert database.inputs["deleteProtectionState"] == "DELETE_PROTECTION_ENABLED"


def test_expired_back_office_sessions_are_deleted_by_a_ttl_policy(program: Program) -> None:
    """Firestore deletes a session once its expires_at has passed (typically within 24 h:
    the function refuses it at once itself)."""
    fields = program.of("firestore/field:Field")
    assert [
        (f.inputs["database"], f.inputs["collection"], f.inputs["field"], f.inputs["ttlConfig"])
        for f in fields
    ] == [(BACK_OFFICE_DATABASE, "sessions", "expires_at", {})]


def test_the_signing_key_is_a_secret_reference_never_a_value(program: Program) -> None:
    secrets = {s.inputs["secretId"] for s in program.of("secret:Secret")}
    assert secrets == {"play-signing-key", "shopper-hash-key", "shopper-identity-key"}
    versions = {v.inputs["secret"].rsplit("/", 1)[-1] for v in program.of("SecretVersion")}
    assert versions == secrets  # from the stack's configuration (encrypted by Pulumi)
    # decide_events runs as its push form in the cloud: a function, secrets by reference.
    decider = program.named("cloudfunctionsv2/function:Function")["decide-events"].inputs
    assert "a-test-value-for-play-signing-key" not in repr(decider)
    secret_envs = {e["key"]: e for e in decider["serviceConfig"]["secretEnvironmentVariables"]}
    assert secret_envs["PLAY_SIGNING_KEY"]["secret"] == "play-signing-key"
    assert secret_envs["PLAY_SIGNING_KEY"]["version"] == "latest"
    pool = program.named("WorkerPool")["freeze-plays"].inputs
    envs = {e["name"]: e for e in pool["template"]["containers"][0]["envs"]}
    assert envs["SHOPPER_HASH_KEY"] == {
        "name": "SHOPPER_HASH_KEY",
        "valueSource": {"secretKeyRef": {"secret": "shopper-hash-key", "version": "latest"}},
    }
    for other in ("freeze-events", "freeze-decisions"):
        names = {
            e["name"]
            for e in program.named("WorkerPool")[other].inputs["template"]["containers"][0]["envs"]
        }
        assert "PLAY_SIGNING_KEY" not in names


def test_stacks_differ_in_region_sizes_retention_and_protection(dev: Program) -> None:
    prod, development = stack_file("prod"), stack_file("dev")
    assert prod.deletion_protection and not development.deletion_protection
    assert development.max_instances == 2 and development.min_instances == 0
    assert prod.max_instances is None and prod.retention_days == {}
    ingest = dev.named("cloudfunctionsv2/function:Function")["ingest-events"].inputs
    assert ingest["serviceConfig"]["maxInstanceCount"] == 2
    assert ingest["serviceConfig"]["minInstanceCount"] == 0
    for pool in dev.of("WorkerPool"):
        assert pool.inputs["scaling"]["manualInstanceCount"] <= 2
        assert pool.inputs["deletionProtection"] is False


def test_unknown_stack_keys_are_refused() -> None:
    from cartwise_infra.config import stack_config

    with pytest.raises(ValueError, match="maxInstance"):
        stack_config("p", {"maxInstance": 3})


def test_a_secret_read_without_a_configured_value_is_refused() -> None:
    """A component reading a secret is created after a version of it: a first deployment
    without the value would fail half-way, so the program refuses it before anything."""
    with pytest.raises(Exception, match=r"play-signing-key.*no value"):
        build(secret_values={"shopper-hash-key": "x", "shopper-identity-key": "y"})
