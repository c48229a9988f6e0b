"""Service accounts and the IAM grants derived from a component's declared ``Access``.

Every grant is on the one resource concerned (topic, subscription, table, dataset,
secret, bucket, function, job), except what Google Cloud only grants on the project:
BigQuery jobs (``roles/bigquery.jobUser``, no data access), and Firestore, granted on
the project under an IAM condition naming the one database.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from cartwise_infra.context import Context, account_id, cloud_name
from shared.platform.resource_model import Access

PUBLISHER = "roles/pubsub.publisher"
SUBSCRIBER = "roles/pubsub.subscriber"
BIGTABLE_READER = "roles/bigtable.reader"
BIGTABLE_USER = "roles/bigtable.user"
BIGQUERY_VIEWER = "roles/bigquery.dataViewer"
BIGQUERY_EDITOR = "roles/bigquery.dataEditor"
BIGQUERY_JOBS = "roles/bigquery.jobUser"
FIRESTORE_VIEWER = "roles/datastore.viewer"
FIRESTORE_USER = "roles/datastore.user"
OBJECT_VIEWER = "roles/storage.objectViewer"
OBJECT_USER = "roles/storage.objectUser"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"  # noqa: S105 (a role name)
RUN_INVOKER = "roles/run.invoker"
JOB_RUNNER = "roles/run.jobsExecutorWithOverrides"
WORKFLOWS_INVOKER = "roles/workflows.invoker"


def check_access(ctx: Context) -> None:
    """Every declared use names a declared resource (a typo would otherwise fail mid-way)."""
    system = ctx.system
    known = {
        "publishes": {t.name for t in system.topics},
        "subscribes": {s.name for s in system.subscriptions},
        "bigtable_reads": {t.name for t in system.bigtable_tables},
        "bigtable_writes": {t.name for t in system.bigtable_tables},
        "bigquery_reads": {d.name for d in system.bigquery_datasets},
        "bigquery_writes": {d.name for d in system.bigquery_datasets},
        "firestore_reads": {d.name for d in system.firestore_databases},
        "firestore_writes": {d.name for d in system.firestore_databases},
        "bucket_reads": {b.name for b in system.buckets},
        "bucket_writes": {b.name for b in system.buckets},
        "secrets": {s.name for s in system.secrets},
        "invokes": {f.name for f in system.functions if f.signature == "http"},
        "runs_jobs": {j.name for j in system.jobs},
    }
    problems = [
        f"{component}: {field} {name!r}"
        for component, access in system.accesses().items()
        for field, names in known.items()
        for name in getattr(access, field)
        if name not in names
    ]
    http = known["invokes"]
    problems += [
        f"scheduler job {j.name}: no HTTP function {j.function!r}"
        for j in system.scheduler_jobs
        if j.function not in http
    ]
    problems += [
        f"worker {w.name}: no subscription {w.subscription!r}"
        for w in system.workers
        if w.subscription not in known["subscribes"]
    ]
    if problems:
        raise ValueError("undeclared resources: " + "; ".join(problems))


def service_account(
    ctx: Context, key: str, prefix: str, name: str, purpose: str, parent: pulumi.Resource
) -> gcp.serviceaccount.Account:
    account = gcp.serviceaccount.Account(
        f"{key}-sa",
        account_id=account_id(prefix, name),
        display_name=f"cartwise {name}",
        description=purpose,
        project=ctx.project,
        opts=ctx.child(parent),
    )
    ctx.service_accounts[key] = account
    return account


def member(account: gcp.serviceaccount.Account) -> pulumi.Output[str]:
    return pulumi.Output.concat("serviceAccount:", account.email)


def firestore_condition(project: str, database: str) -> str:
    return f'resource.name == "projects/{project}/databases/{database}"'


def invoker(
    ctx: Context, key: str, function: str, who: pulumi.Input[str], parent: pulumi.Resource
) -> gcp.cloudrunv2.ServiceIamMember:
    """Lets ``who`` call a function (gen 2 functions are invoked through Cloud Run)."""
    target = ctx.functions[function]
    return gcp.cloudrunv2.ServiceIamMember(
        f"{key}-invokes-{function}",
        project=ctx.project,
        location=ctx.region,
        name=target.name.apply(cloud_name),
        role=RUN_INVOKER,
        member=who,
        opts=ctx.child(parent),
    )


def secret_access(
    ctx: Context,
    key: str,
    account: gcp.serviceaccount.Account,
    access: Access,
    parent: pulumi.Resource,
) -> list[pulumi.Resource]:
    """The accessor grants on the secrets ``access`` reads, and those secrets' versions:
    what a component reading them must be created after."""
    needed: list[pulumi.Resource] = []
    for secret in access.secrets:
        if (key, secret) not in ctx.secret_grants:
            ctx.secret_grants[(key, secret)] = gcp.secretmanager.SecretIamMember(
                f"{key}-secret-{secret}",
                project=ctx.project,
                secret_id=ctx.secrets[secret].secret_id,
                role=SECRET_ACCESSOR,
                member=member(account),
                opts=ctx.child(parent),
            )
        needed.append(ctx.secret_grants[(key, secret)])
        if secret in ctx.secret_versions:
            needed.append(ctx.secret_versions[secret])
    return needed


def grant(
    ctx: Context,
    key: str,
    account: gcp.serviceaccount.Account,
    access: Access,
    parent: pulumi.Resource,
) -> None:
    """One IAM member per declared use; nothing else."""
    who = member(account)
    opts = ctx.child(parent)
    for topic in access.publishes:
        gcp.pubsub.TopicIAMMember(
            f"{key}-publishes-{topic}",
            project=ctx.project,
            topic=ctx.topics[topic].name,
            role=PUBLISHER,
            member=who,
            opts=opts,
        )
    for subscription in access.subscribes:
        gcp.pubsub.SubscriptionIAMMember(
            f"{key}-subscribes-{subscription}",
            project=ctx.project,
            subscription=ctx.subscriptions[subscription].name,
            role=SUBSCRIBER,
            member=who,
            opts=opts,
        )
    tables = [(t, BIGTABLE_READER) for t in access.bigtable_reads]
    tables += [(t, BIGTABLE_USER) for t in access.bigtable_writes]
    for table, role in tables:
        assert ctx.bigtable_instance is not None
        gcp.bigtable.TableIamMember(
            f"{key}-bigtable-{table}",
            project=ctx.project,
            instance_name=ctx.bigtable_instance.name,
            table=ctx.bigtable_tables[table].name,
            role=role,
            member=who,
            opts=opts,
        )
    datasets = [(d, BIGQUERY_VIEWER) for d in access.bigquery_reads]
    datasets += [(d, BIGQUERY_EDITOR) for d in access.bigquery_writes]
    for dataset, role in datasets:
        gcp.bigquery.DatasetIamMember(
            f"{key}-bigquery-{dataset}",
            project=ctx.project,
            dataset_id=ctx.datasets[dataset].dataset_id,
            role=role,
            member=who,
            opts=opts,
        )
    if access.uses_bigquery:
        gcp.projects.IAMMember(
            f"{key}-bigquery-jobs",
            project=ctx.project,
            role=BIGQUERY_JOBS,
            member=who,
            opts=opts,
        )
    databases = [(d, FIRESTORE_VIEWER) for d in access.firestore_reads]
    databases += [(d, FIRESTORE_USER) for d in access.firestore_writes]
    for database, role in databases:
        gcp.projects.IAMMember(
            f"{key}-firestore-{database.strip('()')}",
            project=ctx.project,
            role=role,
            member=who,
            condition=gcp.projects.IAMMemberConditionArgs(
                title=f"only the {database} database",
                expression=firestore_condition(ctx.project, database),
            ),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[ctx.databases[database]])
            ),
        )
    buckets = [(b, OBJECT_VIEWER) for b in access.bucket_reads]
    buckets += [(b, OBJECT_USER) for b in access.bucket_writes]
    for bucket, role in buckets:
        gcp.storage.BucketIAMMember(
            f"{key}-bucket-{bucket}",
            bucket=ctx.buckets[bucket].name,
            role=role,
            member=who,
            opts=opts,
        )
    secret_access(ctx, key, account, access, parent)  # made before the component, if it runs
    for function in access.invokes:
        invoker(ctx, key, function, who, parent)
    for job in access.runs_jobs:
        gcp.cloudrunv2.JobIamMember(
            f"{key}-runs-{job}",
            project=ctx.project,
            location=ctx.region,
            name=ctx.jobs[job].name,
            role=JOB_RUNNER,
            member=who,
            opts=opts,
        )
