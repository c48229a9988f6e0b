"""The one declaration of the system's cloud resources.

Read by the local bootstrap (``emulators.bootstrap``) and by the Pulumi program, so that
what runs locally is what is deployed. Pure data: nothing here talks to a cloud API.
"""

from __future__ import annotations

from shared.decision_read_models import DECISION_TABLES
from shared.journey_campaigns import JOURNEY_TABLES
from shared.read_models import DATASET as BIGQUERY_DATASET  # re-exported
from shared.read_models import DEAD_LETTERS, READ_MODELS
from shared.resource_model import (
    BigQueryDataset,
    BigQueryTable,
    BigtableTable,
    Column,
    ColumnFamily,
    FirestoreDatabase,
    Function,
    GcRule,
    RetryPolicy,
    SchedulerJob,
    Subscription,
    SystemResources,
    Topic,
    Worker,
    Workflow,
)

__all__ = [
    "BIGQUERY_DATASET",
    "BigQueryDataset",
    "BigQueryTable",
    "BigtableTable",
    "Column",
    "ColumnFamily",
    "FirestoreDatabase",
    "Function",
    "GcRule",
    "RetryPolicy",
    "SchedulerJob",
    "Subscription",
    "SystemResources",
    "Topic",
    "Worker",
    "Workflow",
]

PROJECT_PREFIX_LOCAL = "demo-"

# --- The system ------------------------------------------------------------------------

SHOPPER_EVENTS_TOPIC = "shopper-events"
SHOPPER_EVENTS_DEAD_LETTER_TOPIC = "shopper-events-dead-letter"
REJECTED_EVENTS_TOPIC = "rejected-events"
FREEZER_SUBSCRIPTION = "shopper-events-freezer"
BIGTABLE_INSTANCE = "cartwise"
SHOPPER_EVENTS_TABLE = "shopper_events"
EVENT_FAMILY = "event"
EVENT_IDS_TABLE = "event_ids"
ID_FAMILY = "id"
REJECTED_EVENTS_TABLE = "rejected_events"
REJECTED_FAMILY = "rejected"
REJECTED_EVENT_RETENTION_DAYS = 90
RATE_LIMITS_TABLE = "rate_limits"
RATE_LIMIT_FAMILY = "n"
DEFAULT_DATABASE = "(default)"
REWARDS_DATABASE = "rewards"

RAW_EVENT_RETENTION_DAYS = 1000

SHOPPER_EXPERIENCES_TOPIC = "shopper-experiences"
DECIDER_SUBSCRIPTION = "shopper-events-decide"
SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC = "shopper-experiences-dead-letter"
DECISION_FREEZER_SUBSCRIPTION = "shopper-experiences-freezer"
SHOPPER_STATE_TABLE = "shopper_state"
STATE_FAMILY = "s"
EXPERIENCE_TREES_TABLE = "experience_trees"
TREE_FAMILY = "t"
HOT_STATE_RETENTION_DAYS = 90

NIGHTLY_WORKFLOW = "nightly"
NIGHTLY_STEPS_FUNCTION = "nightly_steps"

SYSTEM = SystemResources(
    topics=(
        Topic(name=SHOPPER_EVENTS_TOPIC),
        Topic(name=SHOPPER_EVENTS_DEAD_LETTER_TOPIC),
        Topic(name=REJECTED_EVENTS_TOPIC),
        Topic(name=SHOPPER_EXPERIENCES_TOPIC),
        Topic(name=SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC),
    ),
    subscriptions=(
        Subscription(
            name=FREEZER_SUBSCRIPTION,
            topic=SHOPPER_EVENTS_TOPIC,
            ack_deadline_s=60,
            dead_letter_topic=SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
            max_delivery_attempts=10,
        ),
        Subscription(
            name=f"{SHOPPER_EVENTS_DEAD_LETTER_TOPIC}-inspect",
            topic=SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
            ack_deadline_s=60,
            max_delivery_attempts=5,
        ),
        Subscription(name=f"{REJECTED_EVENTS_TOPIC}-inspect", topic=REJECTED_EVENTS_TOPIC),
        Subscription(
            name=DECIDER_SUBSCRIPTION,
            topic=SHOPPER_EVENTS_TOPIC,
            ack_deadline_s=30,
            dead_letter_topic=SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
            max_delivery_attempts=10,
            enable_message_ordering=True,  # a shopper's events one after the other
        ),
        Subscription(
            name=DECISION_FREEZER_SUBSCRIPTION,
            topic=SHOPPER_EXPERIENCES_TOPIC,
            ack_deadline_s=60,
            dead_letter_topic=SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC,
            max_delivery_attempts=10,
        ),
        Subscription(
            name=f"{SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC}-inspect",
            topic=SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC,
            ack_deadline_s=60,
            max_delivery_attempts=5,
        ),
    ),
    bigtable_instance=BIGTABLE_INSTANCE,
    bigtable_tables=(
        BigtableTable(
            name=SHOPPER_EVENTS_TABLE,
            families=(
                ColumnFamily(
                    name=EVENT_FAMILY,
                    gc=GcRule(max_versions=1, max_age_days=RAW_EVENT_RETENTION_DAYS),
                ),
            ),
        ),
        BigtableTable(
            name=EVENT_IDS_TABLE,
            families=(
                ColumnFamily(
                    name=ID_FAMILY,
                    gc=GcRule(max_versions=1, max_age_days=RAW_EVENT_RETENTION_DAYS),
                ),
            ),
        ),
        BigtableTable(
            name=RATE_LIMITS_TABLE,
            families=(
                ColumnFamily(name=RATE_LIMIT_FAMILY, gc=GcRule(max_versions=1, max_age_days=1)),
            ),
        ),
        BigtableTable(
            name=SHOPPER_STATE_TABLE,
            families=(
                ColumnFamily(
                    name=STATE_FAMILY,
                    gc=GcRule(max_versions=1, max_age_days=HOT_STATE_RETENTION_DAYS),
                ),
            ),
        ),
        BigtableTable(
            name=EXPERIENCE_TREES_TABLE,
            families=(ColumnFamily(name=TREE_FAMILY, gc=GcRule(max_versions=1)),),
        ),
        BigtableTable(
            name=REJECTED_EVENTS_TABLE,
            families=(
                ColumnFamily(
                    name=REJECTED_FAMILY,
                    gc=GcRule(max_versions=1, max_age_days=REJECTED_EVENT_RETENTION_DAYS),
                ),
            ),
        ),
    ),
    bigquery_datasets=(
        BigQueryDataset(name=BIGQUERY_DATASET, description="cartwise cold read models"),
    ),
    bigquery_tables=(*READ_MODELS, DEAD_LETTERS, *DECISION_TABLES, *JOURNEY_TABLES),
    firestore_databases=(
        FirestoreDatabase(
            name=DEFAULT_DATABASE, description="retailers, API keys, campaigns, audit"
        ),
        FirestoreDatabase(
            name=REWARDS_DATABASE,
            description="winners' e-mail addresses and payouts; rewards code path only",
        ),
    ),
    functions=(
        Function(
            name="ingest_events",
            signature="http",
            entry_point="ingest_events",
            public=True,
            description="Shopper Event API: POST /v1/events",
            env_url_name="INGEST_URL",
            local_workers=2,  # one per core: docs/BENCHMARKS.md
            local_threads=4,
        ),
        Function(
            name="experiences",
            signature="http",
            entry_point="experiences",
            public=True,
            description="Experiences API: GET /v1/shoppers/{shopper_id}/experiences",
            env_url_name="EXPERIENCES_URL",
            local_threads=8,
        ),
        Function(
            name=NIGHTLY_STEPS_FUNCTION,
            signature="http",
            entry_point="nightly_steps",
            public=False,  # invoked by the nightly workflow's service account only (OIDC)
            description="Nightly steps: POST /runs, POST /steps/{name} (docs/NIGHTLY.md)",
            env_url_name="NIGHTLY_STEPS_URL",
            local_threads=4,
        ),
    ),
    workers=(
        Worker(
            name="freeze_events",
            subscription=FREEZER_SUBSCRIPTION,
            description="Freezer: shopper events into BigQuery read models (pull worker)",
        ),
        Worker(
            name="decide_events",
            subscription=DECIDER_SUBSCRIPTION,
            description="Decisions: shopper events along their experience trees (pull worker)",
        ),
        Worker(
            name="freeze_decisions",
            subscription=DECISION_FREEZER_SUBSCRIPTION,
            description="Decisions into BigQuery read models (pull worker)",
        ),
    ),
    scheduler_jobs=(
        SchedulerJob(
            name="nightly",
            schedule="30 2 * * *",  # after the day's last baskets are frozen
            time_zone="Etc/UTC",
            workflow=NIGHTLY_WORKFLOW,
            body="{}",  # a new run: run id from the execution, cut-off yesterday
        ),
    ),
    workflows=(
        Workflow(
            name=NIGHTLY_WORKFLOW,
            description="features -> train -> evaluate and gate -> score -> compile trees "
            "-> publish (docs/NIGHTLY.md)",
            calls=(NIGHTLY_STEPS_FUNCTION,),
        ),
    ),
)
