"""Each emulator answers the official client library the way the product will use it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.cloud import bigquery, bigtable
from google.cloud.bigtable import column_family, row_filters
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from shared.platform import clients

pytestmark = pytest.mark.integration


def test_pubsub_publish_and_pull(stack: dict[str, str], unique: str) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    publisher = PublisherClient()
    subscriber = SubscriberClient()
    topic = publisher.topic_path(project, f"t-{unique}")
    subscription = subscriber.subscription_path(project, f"s-{unique}")
    publisher.create_topic(name=topic, timeout=10)
    try:
        subscriber.create_subscription(name=subscription, topic=topic, timeout=10)
        ids = [
            publisher.publish(topic, f"m{i}".encode(), n=str(i)).result(timeout=10)
            for i in range(5)
        ]
        received: dict[str, bytes] = {}
        for _ in range(10):
            response = subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
            for item in response.received_messages:
                received[item.message.message_id] = item.message.data
            if response.received_messages:
                subscriber.acknowledge(
                    subscription=subscription,
                    ack_ids=[m.ack_id for m in response.received_messages],
                )
            if len(received) == 5:
                break
        assert sorted(received) == sorted(ids)
        assert sorted(received.values()) == [f"m{i}".encode() for i in range(5)]
    finally:
        subscriber.delete_subscription(subscription=subscription, timeout=10)
        publisher.delete_topic(topic=topic, timeout=10)


def test_bigtable_write_read_and_atomic_increment(stack: dict[str, str], unique: str) -> None:
    client = bigtable.Client(project=stack["GOOGLE_CLOUD_PROJECT"], admin=True)
    table = client.instance("cartwise").table(f"t_{unique}")
    table.create(column_families={"f": column_family.MaxVersionsGCRule(1)})
    try:
        row = table.direct_row(b"shopper#1")
        row.set_cell("f", b"q", b"value")
        row.commit()
        counter = table.append_row(b"shopper#1")
        counter.increment_cell_value("f", b"n", 3)
        counter.commit()
        counter = table.append_row(b"shopper#1")
        counter.increment_cell_value("f", b"n", 4)
        counter.commit()
        read = table.read_row(b"shopper#1", filter_=row_filters.CellsColumnLimitFilter(1))
        assert read is not None
        assert read.cells["f"][b"q"][0].value == b"value"
        assert int.from_bytes(read.cells["f"][b"n"][0].value, "big", signed=True) == 7
    finally:
        table.delete()


def test_firestore_databases_are_isolated(stack: dict[str, str], unique: str) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    default = clients.firestore_client(project)
    rewards = clients.firestore_client(project, database="rewards")
    doc = f"probe-{unique}"
    rewards.collection("probes").document(doc).set({"email": "winner@example.org"})
    try:
        assert rewards.collection("probes").document(doc).get().to_dict() == {
            "email": "winner@example.org"
        }
        assert not default.collection("probes").document(doc).get().exists
    finally:
        rewards.collection("probes").document(doc).delete()


def test_bigquery_partitioned_table_insert_query_merge(stack: dict[str, str], unique: str) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    dataset = f"{project}.probe_{unique}"
    client.create_dataset(dataset, timeout=30)
    try:
        table = bigquery.Table(
            f"{dataset}.page_views",
            schema=[
                bigquery.SchemaField("event_id", "STRING", mode="REQUIRED"),
                bigquery.SchemaField("shopper_id", "STRING"),
                bigquery.SchemaField("occurred_at", "TIMESTAMP"),
                bigquery.SchemaField("value", "INT64"),
            ],
        )
        table.time_partitioning = bigquery.TimePartitioning(field="occurred_at")
        table.clustering_fields = ["shopper_id"]
        client.create_table(table, timeout=30)
        now = datetime.now(UTC).isoformat()
        errors = client.insert_rows_json(
            f"{dataset}.page_views",
            [
                {"event_id": f"e{i}", "shopper_id": "s1", "occurred_at": now, "value": i}
                for i in range(3)
            ],
            timeout=30,
        )
        assert errors == []
        client.query(
            f"MERGE `{dataset}.page_views` t USING (SELECT 'e1' AS event_id, 10 AS value) s "
            "ON t.event_id = s.event_id WHEN MATCHED THEN UPDATE SET value = s.value",
            timeout=30,
        ).result(timeout=30)
        rows = client.query(
            f"SELECT event_id, value FROM `{dataset}.page_views` ORDER BY event_id", timeout=30
        ).result(timeout=30)
        assert [(r.event_id, r.value) for r in rows] == [("e0", 0), ("e1", 10), ("e2", 2)]
    finally:
        client.delete_dataset(dataset, delete_contents=True, timeout=30)
