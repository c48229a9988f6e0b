"""Create every declared resource on the emulators (idempotent).

The declaration is ``shared.system.resources.SYSTEM``; the Pulumi program reads the same one.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from google.api_core.exceptions import AlreadyExists, Conflict

from emulators.config import StackSettings, function_ports
from shared.platform import clients
from shared.system.resources import BigQueryTable, GcRule, SystemResources

log = logging.getLogger(__name__)


def push_endpoint(settings: StackSettings, port: int, topic: str) -> str:
    """Push URL whose path makes functions-framework set the CloudEvent source as in GCP."""
    return f"http://{settings.host}:{port}/projects/{settings.project}/topics/{topic}"


def create_pubsub(settings: StackSettings, system: SystemResources) -> None:
    publisher = clients.publisher_client()
    subscriber = clients.subscriber_client()
    ports = function_ports(settings, [f.name for f in system.functions])
    try:
        for topic in system.topics:
            with contextlib.suppress(AlreadyExists):
                publisher.create_topic(
                    name=publisher.topic_path(settings.project, topic.name), timeout=30
                )
        for sub in system.subscriptions:
            request: dict[str, object] = {
                "name": subscriber.subscription_path(settings.project, sub.name),
                "topic": publisher.topic_path(settings.project, sub.topic),
                "ack_deadline_seconds": sub.ack_deadline_s,
                "enable_message_ordering": sub.enable_message_ordering,
                "retry_policy": {
                    "minimum_backoff": {"seconds": sub.retry.minimum_backoff_s},
                    "maximum_backoff": {"seconds": sub.retry.maximum_backoff_s},
                },
            }
            if sub.dead_letter_topic:
                request["dead_letter_policy"] = {
                    "dead_letter_topic": publisher.topic_path(
                        settings.project, sub.dead_letter_topic
                    ),
                    "max_delivery_attempts": sub.max_delivery_attempts,
                }
            if sub.push_function:
                request["push_config"] = {
                    "push_endpoint": push_endpoint(settings, ports[sub.push_function], sub.topic)
                }
            with contextlib.suppress(AlreadyExists):
                subscriber.create_subscription(request=request, timeout=30)
    finally:
        subscriber.close()
        publisher.stop()


def _gc_rule(rule: GcRule) -> object:
    from google.cloud.bigtable import column_family

    parts: list[object] = []
    if rule.max_versions is not None:
        parts.append(column_family.MaxVersionsGCRule(rule.max_versions))
    if rule.max_age_days is not None:
        parts.append(column_family.MaxAgeGCRule(timedelta(days=rule.max_age_days)))
    if len(parts) == 1:
        return parts[0]
    return column_family.GCRuleUnion(rules=parts)


def create_bigtable(settings: StackSettings, system: SystemResources) -> None:
    client = clients.bigtable_client(settings.project, admin=True)
    instance = client.instance(system.bigtable_instance)
    existing = {t.table_id for t in instance.list_tables()}
    for table_decl in system.bigtable_tables:
        table = instance.table(table_decl.name)
        if table_decl.name not in existing:
            table.create()
        present = table.list_column_families()
        for family in table_decl.families:
            column_family = table.column_family(family.name, _gc_rule(family.gc))
            if family.name in present:
                column_family.update()
            else:
                column_family.create()
                # The emulator applies GC rules only after a family change: update once.
                column_family.update()


def create_bigquery(settings: StackSettings, system: SystemResources) -> None:
    from google.cloud import bigquery

    env = settings.emulator_env()
    client = clients.bigquery_client(settings.project, env["BIGQUERY_EMULATOR_HOST"])
    for dataset in system.bigquery_datasets:
        ds = bigquery.Dataset(f"{settings.project}.{dataset.name}")
        ds.description = dataset.description
        with contextlib.suppress(Conflict):
            client.create_dataset(ds, timeout=30)
    for table_decl in system.bigquery_tables:
        table = bigquery.Table(
            f"{settings.project}.{table_decl.dataset}.{table_decl.name}",
            schema=[
                bigquery.SchemaField(c.name, c.type, mode=c.mode, description=c.description)
                for c in table_decl.columns
            ],
        )
        table.description = table_decl.description
        if table_decl.partition_field:
            table.time_partitioning = bigquery.TimePartitioning(
                type_=table_decl.partition_type, field=table_decl.partition_field
            )
        if table_decl.clustering:
            table.clustering_fields = list(table_decl.clustering)
        try:
            client.create_table(table, timeout=30)
        except Conflict:
            add_missing_columns(client, table_decl, table.reference)
    # Data kept from before issue 20: row ids get their retailer (a no-op afterwards).
    from shared.freezer.bigquery_read_models import migrate_row_ids
    from shared.system.resources import RETAILER_ROW_ID_TABLES

    migrated = migrate_row_ids(client, settings.project, RETAILER_ROW_ID_TABLES)
    if any(migrated.values()):
        log.info("read-model row ids migrated", extra={"rows": migrated})
    client.close()


def add_missing_columns(client: Any, declared: BigQueryTable, ref: Any) -> list[str]:
    """A table saved by an older stack (``.local/data``) gets the columns declared since.

    BigQuery adds only NULLABLE columns to an existing table (a REQUIRED one is refused:
    start from empty, ``make down && rm -rf .local/data``). ``update_table`` changes the
    schema; bqemulator 1.4.0 records it but does not add the column to its DuckDB table,
    which ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` does (a no-op on BigQuery).
    """
    from google.cloud import bigquery

    existing = client.get_table(ref, timeout=30)
    present = {f.name for f in existing.schema}
    missing = [c for c in declared.columns if c.name not in present]
    if not missing:
        return []
    required = [c.name for c in missing if c.mode == "REQUIRED"]
    if required:
        raise ValueError(
            f"bigquery table {declared.name}: the declared REQUIRED column(s) {required} "
            "cannot be added to the saved table; start from empty: "
            "make down && rm -rf .local/data"
        )
    existing.schema = [
        *existing.schema,
        *(
            bigquery.SchemaField(c.name, c.type, mode=c.mode, description=c.description)
            for c in missing
        ),
    ]
    client.update_table(existing, ["schema"], timeout=30)
    for column in missing:
        client.query(
            f"ALTER TABLE `{ref.project}.{ref.dataset_id}.{ref.table_id}` "
            f"ADD COLUMN IF NOT EXISTS {column.name} {column.type}"
        ).result(timeout=60)
    log.info(
        "bigquery columns added",
        extra={"table": declared.name, "columns": [c.name for c in missing]},
    )
    return [c.name for c in missing]


def create_storage(settings: StackSettings, system: SystemResources) -> None:
    """Each declared bucket, named as in the cloud, with its lifecycle rule (which
    fake-gcs-server stores but does not enforce: nothing expires locally)."""
    client = clients.storage_client(settings.project)
    for declared in system.buckets:
        bucket = client.bucket(declared.cloud_name(settings.project))
        if declared.delete_after_days is not None:
            bucket.add_lifecycle_delete_rule(age=declared.delete_after_days)
        with contextlib.suppress(Conflict):
            client.create_bucket(bucket, timeout=30)


def create_all(settings: StackSettings, system: SystemResources) -> None:
    create_pubsub(settings, system)
    create_bigtable(settings, system)
    create_bigquery(settings, system)
    create_storage(settings, system)
    log.info("resources created", extra={"project": settings.project})
