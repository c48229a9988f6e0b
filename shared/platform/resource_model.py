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
    partition_expiration_days: int | None = Field(
        default=None, description="None: the dataset's (partitioned tables only)"
    )

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


class BigQueryDataset(_Frozen):
    name: str
    description: str
    partition_expiration_days: int | None = Field(
        default=None, description="default retention of the tables' partitions; None: kept"
    )


# --- Firestore -------------------------------------------------------------------------


class FirestoreDatabase(_Frozen):
    name: str
    description: str
    reserved_for: tuple[str, ...] | None = Field(
        default=None,
        description="when set, only these functions, workers or jobs may be granted access "
        "(the rewards database: the rewards code path only)",
    )
    writers: tuple[str, ...] | None = Field(
        default=None,
        description="when set, only these functions, workers or jobs may be granted write "
        "(roles/datastore.user); any other access declared on it must be read only (the "
        "credentials database: none, keys are issued by the operators' CLI)",
    )
    collections: tuple[str, ...] = Field(
        default=(),
        description="the top-level collections the code writes (the privacy scan reads "
        "these and any other it finds)",
    )
    ttl_fields: tuple[tuple[str, str], ...] = Field(
        default=(),
        description="(collection, field): a TTL policy deletes a document once the "
        "timestamp in that field has passed (back-office sessions' expires_at)",
    )


class FirestoreIndex(_Frozen):
    """A composite index a query of the code needs: equality on ``equal``, then a range on
    ``range`` (all ascending). The adapters build their queries from the same object, so a
    query and its index cannot drift apart (tests/unit/test_infra_firestore_indexes.py)."""

    database: str
    collection: str
    equal: tuple[str, ...]
    range: str

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.equal, self.range)


# --- Secrets, buckets ------------------------------------------------------------------


class Secret(_Frozen):
    """A Secret Manager secret, given to the components that declare it as ``env``."""

    name: str
    env: str = Field(description="environment variable the secret's latest version is put in")
    description: str = ""


class Bucket(_Frozen):
    """A Cloud Storage bucket (its cloud name is prefixed with the project id)."""

    name: str
    description: str = ""
    delete_after_days: int | None = None


# --- What a component may touch, and how big it is -------------------------------------


class Access(_Frozen):
    """The resources a function, worker, job or workflow uses: each becomes one IAM grant.

    Least privilege is derived from this alone: a component gets nothing it does not list.
    """

    publishes: tuple[str, ...] = Field(default=(), description="topics")
    subscribes: tuple[str, ...] = Field(default=(), description="subscriptions")
    bigtable_reads: tuple[str, ...] = Field(default=(), description="tables, read only")
    bigtable_writes: tuple[str, ...] = Field(default=(), description="tables, read and write")
    bigquery_reads: tuple[str, ...] = Field(default=(), description="datasets, read only")
    bigquery_writes: tuple[str, ...] = Field(default=(), description="datasets, read and write")
    firestore_reads: tuple[str, ...] = Field(default=(), description="databases, read only")
    firestore_writes: tuple[str, ...] = Field(default=(), description="databases")
    bucket_reads: tuple[str, ...] = Field(default=(), description="buckets, read only")
    bucket_writes: tuple[str, ...] = Field(default=(), description="buckets, read and write")
    secrets: tuple[str, ...] = Field(default=(), description="secrets, as environment variables")
    invokes: tuple[str, ...] = Field(default=(), description="HTTP functions it calls")
    runs_jobs: tuple[str, ...] = Field(default=(), description="Cloud Run jobs it executes")

    @property
    def uses_bigquery(self) -> bool:
        return bool(self.bigquery_reads or self.bigquery_writes)

    def firestore_databases(self) -> tuple[str, ...]:
        return (*self.firestore_reads, *self.firestore_writes)


class Sizing(_Frozen):
    """Cloud Run resources of one instance, and how many instances (cloud only)."""

    memory: str = "512Mi"
    cpu: str = "1"
    min_instances: int = 0
    max_instances: int = 10
    concurrency: int = Field(default=80, description="requests in flight per instance (HTTP)")
    threads: int | None = Field(
        default=None,
        ge=1,
        description="functions-framework's gunicorn threads per instance (THREADS); default "
        "its own, 4 per CPU: the requests served at once, whatever the concurrency admits",
    )
    timeout_s: int = 60


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
    sizing: Sizing = Sizing()
    access: Access = Access()


class BacklogScaling(_Frozen):
    """In the cloud, a pull worker's instance count follows its subscription's backlog:
    ``ceil(undelivered messages / backlog_per_instance)`` instances, between the bounds
    (Google's Cloud Run External Metrics Autoscaler, CREMA: docs/CAPACITY.md). The local
    stack runs ``instances`` (one process)."""

    min_instances: int = Field(ge=1)
    max_instances: int = Field(ge=1)
    backlog_per_instance: int = Field(
        ge=1,
        description="undelivered messages one instance is given: at equilibrium the "
        "backlog is about this many messages per instance (the lag the consumer accepts)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> BacklogScaling:
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances above max_instances")
        return self


class Worker(_Frozen):
    """A long-running Pub/Sub pull consumer (Cloud Run): ``functions/<name>/worker.py``.

    Its own subscription is implied in its access (subscriber); ``instances`` is the
    Cloud Run worker pool's instance count.
    """

    name: str
    subscription: str
    description: str = ""
    instances: int = 1
    sizing: Sizing = Sizing()
    access: Access = Access()
    cloud_delivery: Literal["pull", "push"] = Field(
        default="pull",
        description="how Google Cloud runs it: pull (a worker pool of ``instances``) or push "
        "(its push form, ``functions/<name>/main.py`` ``push_entry_point``, the same service "
        "function, as a function behind a push subscription that Cloud Run scales by "
        "concurrency, sized by ``push_sizing``). The local stack always pulls: the emulator "
        "keeps 2 pushes in flight per subscription (docs/CAPACITY.md)",
    )
    push_entry_point: str | None = None
    push_sizing: Sizing | None = None
    cloud_scaling: BacklogScaling | None = Field(
        default=None,
        description="pull delivery only: the worker pool's instance count follows the "
        "backlog between these bounds; None: a fixed count of ``instances``",
    )

    @model_validator(mode="after")
    def _push_form(self) -> Worker:
        if self.cloud_delivery == "push" and not (self.push_entry_point and self.push_sizing):
            raise ValueError(f"worker {self.name}: push delivery needs its entry point and sizing")
        if self.cloud_delivery == "push" and self.cloud_scaling is not None:
            raise ValueError(f"worker {self.name}: a push service is scaled by Cloud Run")
        return self


class Job(_Frozen):
    """A Cloud Run job (a nightly step): ``python -m <module> [args]`` in the runtime image."""

    name: str
    module: str
    args: tuple[str, ...] = ()
    description: str = ""
    tasks: int = 1
    max_retries: int = 1
    sizing: Sizing = Sizing(memory="2Gi", cpu="1", timeout_s=3600)
    access: Access = Access()


class Workflow(_Frozen):
    """A Cloud Workflows definition: ``workflows/<name>.workflows.yaml``.

    ``schedule`` (cron) makes a Cloud Scheduler job start an execution with ``argument``.
    A file in ``workflows/`` without a declaration is deployed with no access at all.
    """

    name: str
    description: str = ""
    schedule: str | None = None
    time_zone: str = "Etc/UTC"
    argument: str = "{}"
    access: Access = Access()

    @property
    def calls(self) -> tuple[str, ...]:
        """The functions it calls over HTTP: their URLs are given to it as user environment
        variables (``shared.system.workflow_render``)."""
        return self.access.invokes


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


class SystemResources(_Frozen):
    topics: tuple[Topic, ...]
    subscriptions: tuple[Subscription, ...]
    bigtable_instance: str
    bigtable_app_profile: str = Field(
        description="the app profile every component's requests name: single-cluster routing "
        "with single-row transactions (the rate limiter's ReadModifyWrite; read-your-writes for "
        "privacy marks and shopper state), so that a replica cluster changes none of them"
    )
    bigtable_tables: tuple[BigtableTable, ...]
    bigquery_datasets: tuple[BigQueryDataset, ...]
    bigquery_tables: tuple[BigQueryTable, ...]
    firestore_databases: tuple[FirestoreDatabase, ...]
    firestore_indexes: tuple[FirestoreIndex, ...] = ()
    functions: tuple[Function, ...]
    workers: tuple[Worker, ...]
    scheduler_jobs: tuple[SchedulerJob, ...]
    jobs: tuple[Job, ...] = ()
    workflows: tuple[Workflow, ...] = ()
    secrets: tuple[Secret, ...] = ()
    buckets: tuple[Bucket, ...] = ()

    @model_validator(mode="after")
    def _reserved_databases_only_for_their_code_path(self) -> SystemResources:
        for database in self.firestore_databases:
            if database.reserved_for is None:
                continue
            for name, access in self.accesses().items():
                if database.name in access.firestore_databases() and (
                    name not in database.reserved_for
                ):
                    raise ValueError(
                        f"{name} declares access to Firestore database {database.name!r}, "
                        f"reserved for {database.reserved_for}"
                    )
        for database in self.firestore_databases:
            if database.writers is None:
                continue
            for name, access in self.accesses().items():
                if database.name in access.firestore_writes and name not in database.writers:
                    raise ValueError(
                        f"{name} declares write access to Firestore database "
                        f"{database.name!r}, writable only by {database.writers or 'operators'}"
                    )
        return self

    def schedules(self) -> tuple[SchedulerJob, ...]:
        """Every cron trigger: the declared jobs, and one per scheduled workflow (a new
        execution whose argument is the workflow's ``argument``)."""
        return (
            *self.scheduler_jobs,
            *(
                SchedulerJob(
                    name=f"{w.name}-schedule",
                    schedule=w.schedule,
                    time_zone=w.time_zone,
                    workflow=w.name,
                    body=w.argument,
                )
                for w in self.workflows
                if w.schedule
            ),
        )

    def accesses(self) -> dict[str, Access]:
        """Each deployable component's declared access, by component name."""
        found: dict[str, Access] = {}
        for function in self.functions:
            found[function.name] = function.access
        for worker in self.workers:
            found[worker.name] = worker.access
        for job in self.jobs:
            found[job.name] = job.access
        for workflow in self.workflows:
            found[f"workflow:{workflow.name}"] = workflow.access
        return found

    def function(self, name: str) -> Function:
        for function in self.functions:
            if function.name == name:
                return function
        raise KeyError(name)
