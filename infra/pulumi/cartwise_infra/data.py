"""The stores: Bigtable (autoscaled instance, tables, GC rules), BigQuery (datasets,
tables with partition expiration), Firestore databases, Secret Manager, Cloud Storage."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from cartwise_infra.context import Context
from cartwise_infra.iam import FIRESTORE_USER, firestore_condition
from shared.platform.resource_model import BigQueryTable, GcRule

DAY_MS = 86_400_000


@dataclass(frozen=True)
class GcPolicy:
    """A union of the declared limits (a cell goes when any says so)."""

    max_versions: int | None
    max_age: str | None  # hours, as Bigtable takes it

    @property
    def mode(self) -> str | None:
        return "UNION" if self.max_versions is not None and self.max_age is not None else None


def gc_policy(rule: GcRule) -> GcPolicy | None:
    """None: no limit, every cell is kept."""
    if rule.max_versions is None and rule.max_age_days is None:
        return None
    age = None if rule.max_age_days is None else f"{rule.max_age_days * 24}h"
    return GcPolicy(max_versions=rule.max_versions, max_age=age)


class BigtableStore(pulumi.ComponentResource):
    def __init__(self, ctx: Context) -> None:
        super().__init__("cartwise:data:BigtableStore", "bigtable")
        stack = ctx.stack.bigtable
        opts = ctx.child(self)
        instance = gcp.bigtable.Instance(
            ctx.system.bigtable_instance,
            name=ctx.system.bigtable_instance,
            project=ctx.project,
            display_name="cartwise",
            deletion_protection=ctx.stack.deletion_protection,
            clusters=[
                gcp.bigtable.InstanceClusterArgs(
                    cluster_id=f"{ctx.system.bigtable_instance}-c{n}",
                    zone=zone,
                    storage_type=stack.storage_type,
                    autoscaling_config=gcp.bigtable.InstanceClusterAutoscalingConfigArgs(
                        min_nodes=stack.min_nodes,
                        max_nodes=stack.max_nodes,
                        cpu_target=stack.cpu_target,
                    ),
                )
                # A replica (stack's replicaZone) in another zone: replication is automatic.
                for n, zone in enumerate(filter(None, (stack.zone, stack.replica_zone)), 1)
            ],
            opts=opts,
        )
        ctx.bigtable_instance = instance
        # Every component names this profile (BIGTABLE_APP_PROFILE): single-cluster routing
        # to the first cluster, single-row transactions allowed. Multi-cluster routing (the
        # default profile of an instance created with two clusters) refuses ReadModifyWrite
        # (the ingest rate limiter) and reads only eventually consistent across clusters
        # (privacy marks, shopper state: read right after their writes):
        # https://cloud.google.com/bigtable/docs/app-profiles#routing. The replica stays
        # in sync for failover (manual: point the profile at it) and serves backups.
        ctx.bigtable_app_profile = gcp.bigtable.AppProfile(
            f"bigtable-profile-{ctx.system.bigtable_app_profile}",
            app_profile_id=ctx.system.bigtable_app_profile,
            project=ctx.project,
            instance=instance.name,
            description="cartwise components: single-cluster, transactional writes",
            single_cluster_routing=gcp.bigtable.AppProfileSingleClusterRoutingArgs(
                cluster_id=f"{ctx.system.bigtable_instance}-c1",
                allow_transactional_writes=True,
            ),
            ignore_warnings=True,
            opts=opts,
        )
        for declared in ctx.system.bigtable_tables:
            table = gcp.bigtable.Table(
                f"bigtable-{declared.name}",
                name=declared.name,
                project=ctx.project,
                instance_name=instance.name,
                column_families=[
                    gcp.bigtable.TableColumnFamilyArgs(family=f.name) for f in declared.families
                ],
                deletion_protection="PROTECTED" if ctx.stack.deletion_protection else "UNPROTECTED",
                # Scheduled backups, kept a week (Bigtable's automated backup policy).
                automated_backup_policy=gcp.bigtable.TableAutomatedBackupPolicyArgs(
                    frequency=f"{stack.backup_every_hours * 3600}s",
                    retention_period=f"{stack.backup_retention_days * 86_400}s",
                ),
                opts=opts,
            )
            ctx.bigtable_tables[declared.name] = table
            for family in declared.families:
                policy = gc_policy(family.gc)
                if policy is None:
                    continue
                gcp.bigtable.GCPolicy(
                    f"bigtable-{declared.name}-{family.name}-gc",
                    project=ctx.project,
                    instance_name=instance.name,
                    table=table.name,
                    column_family=family.name,
                    mode=policy.mode,
                    max_versions=(
                        None
                        if policy.max_versions is None
                        else [gcp.bigtable.GCPolicyMaxVersionArgs(number=policy.max_versions)]
                    ),
                    max_age=(
                        None
                        if policy.max_age is None
                        else gcp.bigtable.GCPolicyMaxAgeArgs(duration=policy.max_age)
                    ),
                    deletion_policy="ABANDON",
                    opts=opts,
                )
        self.register_outputs({"instance": instance.name})


def schema_json(table: BigQueryTable) -> str:
    return json.dumps(
        [
            {"name": c.name, "type": c.type, "mode": c.mode, "description": c.description}
            for c in table.columns
        ]
    )


class Warehouse(pulumi.ComponentResource):
    """BigQuery datasets and tables; partitions expire after the retention configured."""

    def __init__(self, ctx: Context) -> None:
        super().__init__("cartwise:data:Warehouse", "bigquery")
        opts = ctx.child(self)
        for declared in ctx.system.bigquery_datasets:
            days = ctx.partition_expiration_days(declared.name, None)
            ctx.datasets[declared.name] = gcp.bigquery.Dataset(
                f"bigquery-{declared.name}",
                dataset_id=declared.name,
                project=ctx.project,
                location=ctx.stack.bigquery_location,
                description=declared.description,
                default_partition_expiration_ms=None if days is None else days * DAY_MS,
                delete_contents_on_destroy=not ctx.stack.deletion_protection,
                opts=opts,
            )
        for table in ctx.system.bigquery_tables:
            partitioning = None
            if table.partition_field:
                days = ctx.partition_expiration_days(table.dataset, table.partition_expiration_days)
                partitioning = gcp.bigquery.TableTimePartitioningArgs(
                    type="DAY",
                    field=table.partition_field,
                    expiration_ms=None if days is None else days * DAY_MS,
                )
            gcp.bigquery.Table(
                f"bigquery-{table.dataset}-{table.name}",
                project=ctx.project,
                dataset_id=ctx.datasets[table.dataset].dataset_id,
                table_id=table.name,
                description=table.description,
                schema=schema_json(table),
                time_partitioning=partitioning,
                clusterings=list(table.clustering) or None,
                deletion_protection=ctx.stack.deletion_protection,
                opts=opts,
            )
        self.register_outputs({})


class DocumentStores(pulumi.ComponentResource):
    """Firestore databases (``(default)``, ``rewards``, ``credentials``, ``back-office``),
    their TTL policies, and the operators' write access to the databases only operators
    may write (``writers=()``: the credentials)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__("cartwise:data:DocumentStores", "firestore")
        opts = ctx.child(self)
        protected = ctx.stack.deletion_protection
        for declared in ctx.system.firestore_databases:
            ctx.databases[declared.name] = gcp.firestore.Database(
                f"firestore-{declared.name.strip('()')}",
                name=declared.name,
                project=ctx.project,
                location_id=ctx.stack.firestore_location,
                type="FIRESTORE_NATIVE",
                delete_protection_state=(
                    "DELETE_PROTECTION_ENABLED" if protected else "DELETE_PROTECTION_DISABLED"
                ),
                deletion_policy="ABANDON" if protected else "DELETE",
                # Point-in-time recovery: any minute of the last 7 days can be read back.
                point_in_time_recovery_enablement=(
                    "POINT_IN_TIME_RECOVERY_ENABLED"
                    if ctx.stack.point_in_time_recovery
                    else "POINT_IN_TIME_RECOVERY_DISABLED"
                ),
                opts=opts,
            )
            database = ctx.databases[declared.name]
            for collection, name in declared.ttl_fields:
                # A TTL policy: documents are deleted once ``name`` has passed (typically
                # within 24 hours: the code refuses them itself before).
                gcp.firestore.Field(
                    f"firestore-{declared.name.strip('()')}-{collection}-{name}-ttl",
                    project=ctx.project,
                    database=database.name,
                    collection=collection,
                    field=name,
                    ttl_config=gcp.firestore.FieldTtlConfigArgs(),
                    opts=opts,
                )
            if declared.writers == ():  # written by the operators' CLI only
                for n, issuer in enumerate(ctx.stack.credential_issuers):
                    gcp.projects.IAMMember(
                        f"issuer-{n}-firestore-{declared.name.strip('()')}",
                        project=ctx.project,
                        role=FIRESTORE_USER,
                        member=issuer,
                        condition=gcp.projects.IAMMemberConditionArgs(
                            title=f"only the {declared.name} database",
                            expression=firestore_condition(ctx.project, declared.name),
                        ),
                        opts=pulumi.ResourceOptions.merge(
                            opts, pulumi.ResourceOptions(depends_on=[database])
                        ),
                    )
        # The composite indexes the code's queries need (the retention purge's).
        for index in ctx.system.firestore_indexes:
            database = ctx.databases[index.database]
            gcp.firestore.Index(
                f"firestore-index-{index.database.strip('()')}-{index.collection}-"
                + "-".join(index.fields),
                project=ctx.project,
                database=database.name,
                collection=index.collection,
                query_scope="COLLECTION",
                fields=[
                    gcp.firestore.IndexFieldArgs(field_path=field, order="ASCENDING")
                    for field in index.fields
                ],
                opts=pulumi.ResourceOptions.merge(
                    opts, pulumi.ResourceOptions(depends_on=[database])
                ),
            )
        self.register_outputs({})


class Secrets(pulumi.ComponentResource):
    """Secret Manager secrets; a version only when the stack's config holds a value (the
    operator may add versions with gcloud instead: docs/DEPLOY.md)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__("cartwise:data:Secrets", "secrets")
        opts = ctx.child(self)
        for declared in ctx.system.secrets:
            secret = gcp.secretmanager.Secret(
                f"secret-{declared.name}",
                secret_id=declared.name,
                project=ctx.project,
                replication=gcp.secretmanager.SecretReplicationArgs(
                    auto=gcp.secretmanager.SecretReplicationAutoArgs()
                ),
                labels={"cartwise": "signing-key"},
                opts=opts,
            )
            ctx.secrets[declared.name] = secret
            value = ctx.secret_values.get(declared.name)
            if value is not None:
                ctx.secret_versions[declared.name] = gcp.secretmanager.SecretVersion(
                    f"secret-{declared.name}-version",
                    secret=secret.id,
                    secret_data=pulumi.Output.secret(value),
                    # A rotated-out version stays (disabled), for tokens signed with it.
                    deletion_policy="DISABLE",
                    opts=opts,
                )
        self.register_outputs({})


class Buckets(pulumi.ComponentResource):
    def __init__(self, ctx: Context) -> None:
        super().__init__("cartwise:data:Buckets", "buckets")
        opts = ctx.child(self)
        for declared in ctx.system.buckets:
            rules = []
            if declared.delete_after_days is not None:
                rules.append(
                    gcp.storage.BucketLifecycleRuleArgs(
                        action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                        condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                            age=declared.delete_after_days
                        ),
                    )
                )
            ctx.buckets[declared.name] = gcp.storage.Bucket(
                f"bucket-{declared.name}",
                name=f"{ctx.project}-{declared.name}",
                project=ctx.project,
                location=ctx.region,
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                force_destroy=not ctx.stack.deletion_protection,
                lifecycle_rules=rules,
                opts=opts,
            )
        self.register_outputs({})
