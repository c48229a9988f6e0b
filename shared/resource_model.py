"""Types of the system's resource declaration (pure data, no cloud API)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    local_workers: int = Field(
        default=1, description="gunicorn WORKERS locally (Cloud Run: instances x concurrency)"
    )
    local_threads: int = 8


class Worker(_Frozen):
    """A long-running Pub/Sub pull consumer (Cloud Run): ``functions/<name>/worker.py``."""

    name: str
    subscription: str
    description: str = ""


class SchedulerJob(_Frozen):
    """A cron job targeting a function (``path``, ``method``, ``body``) or a workflow (a new
    execution whose argument is ``body``, as Cloud Scheduler's Workflows target does)."""

    name: str
    schedule: str
    time_zone: str = "Etc/UTC"
    function: str | None = None
    workflow: str | None = None
    path: str = "/"
    method: Literal["GET", "POST"] = "POST"
    body: str = "{}"

    @model_validator(mode="after")
    def _one_target(self) -> SchedulerJob:
        if (self.function is None) == (self.workflow is None):
            raise ValueError("a job targets either a function or a workflow")
        return self


class Workflow(_Frozen):
    """A Cloud Workflows workflow: ``workflows/<name>.workflows.yaml``; the functions it
    calls are given to it as user environment variables (``shared.workflow_render``)."""

    name: str
    description: str = ""
    calls: tuple[str, ...] = Field(default=(), description="functions it calls over HTTP")


class SystemResources(_Frozen):
    topics: tuple[Topic, ...]
    subscriptions: tuple[Subscription, ...]
    bigtable_instance: str
    bigtable_tables: tuple[BigtableTable, ...]
    bigquery_datasets: tuple[BigQueryDataset, ...]
    bigquery_tables: tuple[BigQueryTable, ...]
    firestore_databases: tuple[FirestoreDatabase, ...]
    functions: tuple[Function, ...]
    workers: tuple[Worker, ...]
    scheduler_jobs: tuple[SchedulerJob, ...]
    workflows: tuple[Workflow, ...] = ()

    def function(self, name: str) -> Function:
        for function in self.functions:
            if function.name == name:
                return function
        raise KeyError(name)
