"""The one declaration of the system's cloud resources.

Read by the local bootstrap (``emulators.bootstrap``) and by the Pulumi program, so that
what runs locally is what is deployed. Pure data: nothing here talks to a cloud API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PROJECT_PREFIX_LOCAL = "demo-"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- Pub/Sub ---------------------------------------------------------------------------


class Topic(_Frozen):
    name: str
    message_retention_days: int = 7


class RetryPolicy(_Frozen):
    minimum_backoff_s: int = 10
    maximum_backoff_s: int = 600


class Subscription(_Frozen):
    """A subscription; ``push_function`` makes it a push subscription to that function."""

    name: str
    topic: str
    push_function: str | None = None
    ack_deadline_s: int = 60
    dead_letter_topic: str | None = None
    max_delivery_attempts: int = 10
    retry: RetryPolicy = RetryPolicy()
    enable_message_ordering: bool = False


# --- Bigtable --------------------------------------------------------------------------


class GcRule(_Frozen):
    """Union of the limits given (a cell goes when any limit says so)."""

    max_versions: int | None = None
    max_age_days: int | None = None


class ColumnFamily(_Frozen):
    name: str
    gc: GcRule


class BigtableTable(_Frozen):
    name: str
    families: tuple[ColumnFamily, ...]


# --- BigQuery --------------------------------------------------------------------------

BigQueryType = Literal["STRING", "INT64", "FLOAT64", "NUMERIC", "BOOL", "TIMESTAMP", "DATE", "JSON"]


class Column(_Frozen):
    name: str
    type: BigQueryType
    mode: Literal["NULLABLE", "REQUIRED", "REPEATED"] = "NULLABLE"
    description: str = ""


class BigQueryTable(_Frozen):
    dataset: str
    name: str
    description: str
    columns: tuple[Column, ...]
    partition_field: str | None = None
    clustering: tuple[str, ...] = ()


class BigQueryDataset(_Frozen):
    name: str
    description: str


# --- Firestore -------------------------------------------------------------------------


class FirestoreDatabase(_Frozen):
    name: str
    description: str


# --- Functions and schedules -----------------------------------------------------------


class Function(_Frozen):
    """A deployable function: its folder under ``functions/`` is its name."""

    name: str
    signature: Literal["http", "cloudevent"]
    entry_point: str
    public: bool = False
    description: str = ""
    env_url_name: str | None = Field(
        default=None, description="stack.env key that carries this function's base URL"
    )


class SchedulerJob(_Frozen):
    name: str
    schedule: str
    time_zone: str = "Etc/UTC"
    function: str
    path: str = "/"
    method: Literal["GET", "POST"] = "POST"
    body: str = "{}"


class SystemResources(_Frozen):
    topics: tuple[Topic, ...]
    subscriptions: tuple[Subscription, ...]
    bigtable_instance: str
    bigtable_tables: tuple[BigtableTable, ...]
    bigquery_datasets: tuple[BigQueryDataset, ...]
    bigquery_tables: tuple[BigQueryTable, ...]
    firestore_databases: tuple[FirestoreDatabase, ...]
    functions: tuple[Function, ...]
    scheduler_jobs: tuple[SchedulerJob, ...]

    def function(self, name: str) -> Function:
        for function in self.functions:
            if function.name == name:
                return function
        raise KeyError(name)


# --- The system ------------------------------------------------------------------------

SHOPPER_EVENTS_TOPIC = "shopper-events"
SHOPPER_EVENTS_DEAD_LETTER_TOPIC = "shopper-events-dead-letter"
REJECTED_EVENTS_TOPIC = "rejected-events"
BIGTABLE_INSTANCE = "cartwise"
SHOPPER_EVENTS_TABLE = "shopper_events"
EVENT_FAMILY = "event"
EVENT_IDS_TABLE = "event_ids"
ID_FAMILY = "id"
REJECTED_EVENTS_TABLE = "rejected_events"
REJECTED_FAMILY = "rejected"
REJECTED_EVENT_RETENTION_DAYS = 90
BIGQUERY_DATASET = "cartwise"
DEFAULT_DATABASE = "(default)"
REWARDS_DATABASE = "rewards"

RAW_EVENT_RETENTION_DAYS = 1000

SYSTEM = SystemResources(
    topics=(
        Topic(name=SHOPPER_EVENTS_TOPIC),
        Topic(name=SHOPPER_EVENTS_DEAD_LETTER_TOPIC),
        Topic(name=REJECTED_EVENTS_TOPIC),
    ),
    subscriptions=(
        Subscription(
            name=f"{SHOPPER_EVENTS_DEAD_LETTER_TOPIC}-inspect",
            topic=SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
            ack_deadline_s=60,
            max_delivery_attempts=5,
        ),
        Subscription(name=f"{REJECTED_EVENTS_TOPIC}-inspect", topic=REJECTED_EVENTS_TOPIC),
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
    bigquery_tables=(),
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
        ),
    ),
    scheduler_jobs=(),
)
