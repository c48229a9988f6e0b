"""`make up` creates every declared resource and provisions the demo retailer."""

from __future__ import annotations

import pytest
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from shared.platform import clients
from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
from shared.retailers.keys import identify
from shared.system.resources import CREDENTIALS_DATABASE, SYSTEM

pytestmark = pytest.mark.integration


def test_topics_and_subscriptions_are_created_as_declared(stack: dict[str, str]) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    publisher = PublisherClient()
    subscriber = SubscriberClient()
    topics = {
        t.name.rsplit("/", 1)[1] for t in publisher.list_topics(project=f"projects/{project}")
    }
    assert {t.name for t in SYSTEM.topics} <= topics
    for declared in SYSTEM.subscriptions:
        sub = subscriber.get_subscription(
            subscription=subscriber.subscription_path(project, declared.name), timeout=10
        )
        assert sub.topic.endswith(f"/topics/{declared.topic}")
        assert sub.ack_deadline_seconds == declared.ack_deadline_s
        if declared.dead_letter_topic:
            assert sub.dead_letter_policy.dead_letter_topic.endswith(declared.dead_letter_topic)
            assert sub.dead_letter_policy.max_delivery_attempts == declared.max_delivery_attempts
        if declared.push_function:
            assert f"/topics/{declared.topic}" in sub.push_config.push_endpoint


def test_bigtable_tables_and_families_are_created(stack: dict[str, str]) -> None:
    client = clients.bigtable_client(stack["GOOGLE_CLOUD_PROJECT"], admin=True)
    instance = client.instance(SYSTEM.bigtable_instance)
    tables = {t.table_id for t in instance.list_tables()}
    for declared in SYSTEM.bigtable_tables:
        assert declared.name in tables
        families = instance.table(declared.name).list_column_families()
        assert {f.name for f in declared.families} <= set(families)


def test_bigquery_datasets_and_tables_are_created(stack: dict[str, str]) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    for dataset in SYSTEM.bigquery_datasets:
        client.get_dataset(f"{project}.{dataset.name}", timeout=10)
    for table in SYSTEM.bigquery_tables:
        got = client.get_table(f"{project}.{table.dataset}.{table.name}", timeout=10)
        assert [f.name for f in got.schema] == [c.name for c in table.columns]
        if table.partition_field:
            assert got.time_partitioning.field == table.partition_field
        assert list(got.clustering_fields or []) == list(table.clustering)


def test_demo_retailer_key_authenticates(stack: dict[str, str]) -> None:
    store = FirestoreApiKeyStore(
        clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"], CREDENTIALS_DATABASE)
    )
    found = identify(store, stack["DEMO_API_KEY"])
    assert found is not None and found.retailer_id == stack["DEMO_RETAILER_ID"]
    assert identify(store, stack["DEMO_API_KEY"][:-1]) is None
