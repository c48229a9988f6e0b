"""The one declaration of the system's cloud resources.

Read by the local bootstrap (``emulators.bootstrap``) and by the Pulumi program, so that
what runs locally is what is deployed. Pure data: nothing here talks to a cloud API.
"""

from __future__ import annotations

from shared.decisions.read_models import DECISION_TABLES
from shared.freezer.read_models import (
    COMPACTIONS_COLLECTION,
    DEAD_LETTERS,
    LANDING_DATASET,
    LANDING_RETENTION_DAYS,
    LANDINGS,
    READ_MODELS,
)
from shared.freezer.read_models import DATASET as BIGQUERY_DATASET  # re-exported
from shared.journey.campaigns import JOURNEY_TABLES
from shared.nightly.tables import NIGHTLY_TABLES
from shared.platform.resource_model import (
    Access,
    BacklogScaling,
    BigQueryDataset,
    BigQueryTable,
    BigtableTable,
    Bucket,
    Column,
    ColumnFamily,
    FirestoreDatabase,
    FirestoreIndex,
    Function,
    GcRule,
    Job,
    RetryPolicy,
    SchedulerJob,
    Secret,
    Sizing,
    Subscription,
    SystemResources,
    Topic,
    Worker,
    Workflow,
)
from shared.privacy.retention import DataClass, RetentionDefaults
from shared.privacy_marks.marks import ERASURE_MARK_DAYS
from shared.rewards.read_models import PLAY_TABLES

__all__ = [
    "BIGQUERY_DATASET",
    "Access",
    "BigQueryDataset",
    "BigQueryTable",
    "BigtableTable",
    "Bucket",
    "Column",
    "ColumnFamily",
    "FirestoreDatabase",
    "FirestoreIndex",
    "Function",
    "GcRule",
    "Job",
    "RetryPolicy",
    "SchedulerJob",
    "Secret",
    "Sizing",
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
# The app profile every component names: single-cluster routing with single-row
# transactions (docs/DEPLOY.md, "Bigtable replication").
BIGTABLE_APP_PROFILE = "components"
SHOPPER_EVENTS_TABLE = "shopper_events"
EVENT_FAMILY = "event"
EVENT_IDS_TABLE = "event_ids"
ID_FAMILY = "id"
# The retention purge's time-ordered index of events: ``{retailer}#{hour}#{event_id}``
# (no shopper id), cell time = occurred_at (shared/privacy/bigtable_erasers.py).
EVENT_HOURS_TABLE = "event_hours"
EVENT_HOUR_FAMILY = "h"
REJECTED_EVENTS_TABLE = "rejected_events"
REJECTED_FAMILY = "rejected"
REJECTED_EVENT_RETENTION_DAYS = 90
RATE_LIMITS_TABLE = "rate_limits"
RATE_LIMIT_FAMILY = "n"
DEFAULT_DATABASE = "(default)"
REWARDS_DATABASE = "rewards"
# Credentials (docs/PRIVACY.md, "Credentials and the back office"): retailers' API keys and
# CSM accounts, written only by the operators' CLI; the functions that authenticate read it.
CREDENTIALS_DATABASE = "credentials"
API_KEYS_COLLECTION = "api_keys"
CSM_ACCOUNTS_COLLECTION = "csm_accounts"
# The back office's sessions: written by the campaigns function only, nothing else in it.
BACK_OFFICE_DATABASE = "back-office"
SESSIONS_COLLECTION = "sessions"

RAW_EVENT_RETENTION_DAYS = 1000

# The retention purge's Firestore queries (a retailer's documents older than a cut-off):
# equality on retailer_id and a range on the time need a composite index each
# (docs/PRIVACY.md); the rewards adapters build their purge queries from these.
PLAYS_BY_AGE = FirestoreIndex(
    database=REWARDS_DATABASE, collection="plays", equal=("retailer_id",), range="played_at"
)
PLAYED_ORDERS_BY_AGE = FirestoreIndex(
    database=REWARDS_DATABASE,
    collection="played_orders",
    equal=("retailer_id",),
    range="played_at",
)
CLAIMS_BY_AGE = FirestoreIndex(
    database=REWARDS_DATABASE, collection="claims", equal=("retailer_id",), range="claimed_at"
)

# The tables whose row_id is {retailer}/{event id}[...] (issue 20): rows written before the
# retailer was part of it are migrated by `cartwise migrate-row-ids` (and the bootstrap).
RETAILER_ROW_ID_TABLES = (*READ_MODELS, *DECISION_TABLES)

SHOPPER_EXPERIENCES_TOPIC = "shopper-experiences"
DECIDER_SUBSCRIPTION = "shopper-events-decide"
SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC = "shopper-experiences-dead-letter"
DECISION_FREEZER_SUBSCRIPTION = "shopper-experiences-freezer"
SHOPPER_STATE_TABLE = "shopper_state"
STATE_FAMILY = "s"
EXPERIENCE_TREES_TABLE = "experience_trees"
TREE_FAMILY = "t"
HOT_STATE_RETENTION_DAYS = 90
# Privacy marks (docs/PRIVACY.md): every writer checks them; erasure marks expire after
# shared.privacy_marks.marks.ERASURE_MARK_DAYS, objections stand.
PRIVACY_MARKS_TABLE = "privacy_marks"
ERASED_FAMILY = "e"
OBJECTED_FAMILY = "o"

# Cold read models are kept as long as raw events (BigQuery partition expiration).
READ_MODEL_RETENTION_DAYS = RAW_EVENT_RETENTION_DAYS

# Retention per data class (docs/PRIVACY.md): the default contractual period, and the
# ceiling no contract may exceed. The ceiling is the partition expiration of the BigQuery
# tables of that class (the backstop); each retailer's periods are applied by the
# scheduled purge ("retention-purge").
_RETENTION_DAYS = {
    DataClass.RAW_EVENTS: RAW_EVENT_RETENTION_DAYS,
    DataClass.READ_MODELS: READ_MODEL_RETENTION_DAYS,
    DataClass.HOT_STATE: HOT_STATE_RETENTION_DAYS,
    DataClass.DECISIONS: READ_MODEL_RETENTION_DAYS,
    DataClass.FEATURES: READ_MODEL_RETENTION_DAYS,
    DataClass.REWARDS: READ_MODEL_RETENTION_DAYS,
}
# Today the default period is the ceiling for every class: contracts may only shorten it.
RETENTION = RetentionDefaults(default_days=_RETENTION_DAYS, ceiling_days=_RETENTION_DAYS)

# The data class of every BigQuery table that holds shopper data (tests check that every
# table with a shopper column is here); the others hold none.
BIGQUERY_DATA_CLASSES: dict[str, DataClass] = {
    **{t.name: DataClass.READ_MODELS for t in (*READ_MODELS, *JOURNEY_TABLES)},
    # Landing rows are read-model rows waiting for the compaction (a week at most).
    **{t.name: DataClass.READ_MODELS for t in LANDINGS.values()},
    DEAD_LETTERS.name: DataClass.RAW_EVENTS,
    **{t.name: DataClass.DECISIONS for t in DECISION_TABLES},
    **{t.name: DataClass.FEATURES for t in NIGHTLY_TABLES if "shopper_id" in t.column_names},
    **{t.name: DataClass.REWARDS for t in PLAY_TABLES},
}


def _expiring(table: BigQueryTable) -> BigQueryTable:
    """A partitioned table's partitions expire at its data class's ceiling (or sooner,
    when its declaration says so: the landing tables)."""
    data_class = BIGQUERY_DATA_CLASSES.get(table.name)
    if table.partition_field is None or data_class is None:
        return table
    days = RETENTION.ceiling_days[data_class]
    if table.partition_expiration_days is not None:
        days = min(days, table.partition_expiration_days)
    return table.model_copy(update={"partition_expiration_days": days})


SHOPPER_HASH_KEY_SECRET = "shopper-hash-key"  # noqa: S105 (the secret's name)
ERASURE_FUNCTION = "erasure_requests"
PRIVACY_FUNCTION = "privacy_maintenance"
RETENTION_PURGE_JOB = "retention-purge"
ERASURE_SWEEP_JOB = "erasure-sweep"
PLAY_SIGNING_KEY_SECRET = "play-signing-key"  # noqa: S105 (the secret's name)
# Derives each retailer's shopper identity secret (docs/INGEST.md, "Keys").
SHOPPER_IDENTITY_KEY_SECRET = "shopper-identity-key"  # noqa: S105 (the secret's name)

# The rewards game (docs/REWARDS.md): the only components that reach the rewards database.
PLAYS_FUNCTION = "plays"
VOID_PLAYS_WORKER = "void_plays"
FREEZE_PLAYS_WORKER = "freeze_plays"
PLAYS_TOPIC = "plays"
PLAYS_DEAD_LETTER_TOPIC = "plays-dead-letter"
PLAYS_FREEZER_SUBSCRIPTION = "plays-freezer"
VOID_PLAYS_SUBSCRIPTION = "shopper-events-void-plays"

# Campaign changes live in seconds (docs/CAMPAIGNS.md, "Live in seconds"): the campaigns
# function publishes every saved change; recompile_trees recompiles the default trees of the
# retailers it touches.
CAMPAIGN_CHANGES_TOPIC = "campaign-changes"
CAMPAIGN_CHANGES_DEAD_LETTER_TOPIC = "campaign-changes-dead-letter"
RECOMPILE_TREES_WORKER = "recompile_trees"
RECOMPILE_TREES_SUBSCRIPTION = "campaign-changes-recompile"

# The cold path's compaction (docs/FREEZER.md): landing tables into the read models.
COMPACTION_FUNCTION = "compact_read_models"
COMPACTION_JOB = "compact-read-models"
CAMPAIGN_STATS_FUNCTION = "refresh_campaign_stats"
CAMPAIGN_STATS_JOB = "refresh-campaign-stats"

NIGHTLY_WORKFLOW = "nightly"
NIGHTLY_STEPS_FUNCTION = "nightly_steps"
# The nightly's models and run metadata, under nightly/{run_id}/ (docs/NIGHTLY.md).
NIGHTLY_ARTIFACTS_BUCKET = "nightly-artifacts"
# The Cloud Run job of the sharded steps (scoring, new items, personal trees): one task per
# hash shard of shoppers (docs/NIGHTLY.md); a run may ask for another count.
NIGHTLY_SHARDS_JOB = "nightly_shards"
NIGHTLY_SHARD_TASKS = 4
# A run needs its models for the hours it runs; a month keeps them for inspection.
NIGHTLY_ARTIFACTS_DAYS = 30


def inspection(topic: str) -> Subscription:
    """The operators' subscription of a terminal topic (dead letters, rejected events).

    Nothing reads it automatically, so nothing should ever be dropped from it: a message an
    operator's tool nacks (or lets expire) 100 times is dead-lettered onto the same topic,
    i.e. queued again as a new message, instead of being retried forever or lost.
    """
    return Subscription(
        name=f"{topic}-inspect",
        topic=topic,
        ack_deadline_s=60,
        dead_letter_topic=topic,
        max_delivery_attempts=100,
    )


SYSTEM = SystemResources(
    topics=(
        Topic(name=SHOPPER_EVENTS_TOPIC),
        Topic(name=SHOPPER_EVENTS_DEAD_LETTER_TOPIC),
        Topic(name=REJECTED_EVENTS_TOPIC),
        Topic(name=SHOPPER_EXPERIENCES_TOPIC),
        Topic(name=SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC),
        Topic(name=PLAYS_TOPIC),
        Topic(name=PLAYS_DEAD_LETTER_TOPIC),
        Topic(name=CAMPAIGN_CHANGES_TOPIC),
        Topic(name=CAMPAIGN_CHANGES_DEAD_LETTER_TOPIC),
    ),
    subscriptions=(
        Subscription(
            name=FREEZER_SUBSCRIPTION,
            topic=SHOPPER_EVENTS_TOPIC,
            ack_deadline_s=60,
            dead_letter_topic=SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
            max_delivery_attempts=10,
        ),
        inspection(SHOPPER_EVENTS_DEAD_LETTER_TOPIC),
        inspection(REJECTED_EVENTS_TOPIC),
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
        inspection(SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC),
        # Order status changes void unpaid wins. Every event is delivered (the emulator
        # applies no filter); the worker skips all but order_status_changed.
        Subscription(
            name=VOID_PLAYS_SUBSCRIPTION,
            topic=SHOPPER_EVENTS_TOPIC,
            ack_deadline_s=60,
            dead_letter_topic=SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
            max_delivery_attempts=10,
        ),
        Subscription(
            name=PLAYS_FREEZER_SUBSCRIPTION,
            topic=PLAYS_TOPIC,
            ack_deadline_s=60,
            dead_letter_topic=PLAYS_DEAD_LETTER_TOPIC,
            max_delivery_attempts=10,
        ),
        inspection(PLAYS_DEAD_LETTER_TOPIC),
        Subscription(
            name=RECOMPILE_TREES_SUBSCRIPTION,
            topic=CAMPAIGN_CHANGES_TOPIC,
            ack_deadline_s=60,
            dead_letter_topic=CAMPAIGN_CHANGES_DEAD_LETTER_TOPIC,
            max_delivery_attempts=10,
            enable_message_ordering=True,  # one campaign's changes in the order saved
        ),
        inspection(CAMPAIGN_CHANGES_DEAD_LETTER_TOPIC),
    ),
    bigtable_instance=BIGTABLE_INSTANCE,
    bigtable_app_profile=BIGTABLE_APP_PROFILE,
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
            name=EVENT_HOURS_TABLE,
            families=(
                ColumnFamily(
                    name=EVENT_HOUR_FAMILY,
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
            name=PRIVACY_MARKS_TABLE,
            families=(
                ColumnFamily(
                    name=ERASED_FAMILY, gc=GcRule(max_versions=1, max_age_days=ERASURE_MARK_DAYS)
                ),
                ColumnFamily(name=OBJECTED_FAMILY, gc=GcRule(max_versions=1)),
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
        BigQueryDataset(
            name=BIGQUERY_DATASET,
            description="cartwise cold read models",
            partition_expiration_days=READ_MODEL_RETENTION_DAYS,
        ),
        BigQueryDataset(
            name=LANDING_DATASET,
            description="cartwise landing tables: the freezer's appends, before compaction",
            partition_expiration_days=LANDING_RETENTION_DAYS,
        ),
    ),
    bigquery_tables=tuple(
        _expiring(t)
        for t in (
            # Landing before read models: the erasure deletes a shopper's landing rows
            # first, so that a later compaction has none of them to bring back.
            *LANDINGS.values(),
            *READ_MODELS,
            DEAD_LETTERS,
            *DECISION_TABLES,
            *JOURNEY_TABLES,
            *NIGHTLY_TABLES,
            *PLAY_TABLES,
        )
    ),
    firestore_databases=(
        FirestoreDatabase(
            name=DEFAULT_DATABASE,
            description="retailers, campaigns, nightly runs, privacy",
            collections=(
                "retailers",
                "campaigns",
                "nightly_runs",
                "nightly",
                "erasure_requests",
                "suppressions",
                "privacy_audit",
                COMPACTIONS_COLLECTION,
            ),
        ),
        FirestoreDatabase(
            name=REWARDS_DATABASE,
            description="winners' e-mail addresses and payouts; rewards code path only",
            # The rewards game, and privacy_maintenance, which erases and purges the
            # vault (it never reads it for anything else).
            reserved_for=(PLAYS_FUNCTION, VOID_PLAYS_WORKER, PRIVACY_FUNCTION),
            collections=("claims", "plays", "budget_slots", "voided_orders"),
        ),
        FirestoreDatabase(
            name=CREDENTIALS_DATABASE,
            description="retailers' API keys and CSM accounts (hashes); issued by operators",
            # The functions that authenticate callers read it; none may write it: keys and
            # accounts are issued and revoked by the operators' CLI (docs/DEPLOY.md).
            reserved_for=(
                "ingest_events",
                "experiences",
                "campaigns",
                PLAYS_FUNCTION,
                ERASURE_FUNCTION,
                PRIVACY_FUNCTION,  # lists the retailers that hold a key (retention purge)
            ),
            writers=(),
            collections=(API_KEYS_COLLECTION, CSM_ACCOUNTS_COLLECTION),
        ),
        FirestoreDatabase(
            name=BACK_OFFICE_DATABASE,
            description="the back office's sessions (hashed ids, expiry); campaigns only",
            reserved_for=("campaigns",),
            writers=("campaigns",),
            collections=(SESSIONS_COLLECTION,),
            # Expired sessions are refused by the code at once and deleted by Firestore's
            # TTL policy (typically within 24 hours of expires_at).
            ttl_fields=((SESSIONS_COLLECTION, "expires_at"),),
        ),
    ),
    firestore_indexes=(PLAYS_BY_AGE, PLAYED_ORDERS_BY_AGE, CLAIMS_BY_AGE),
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
            # 10,000 events/s at peak, in requests of a few events each.
            sizing=Sizing(memory="1Gi", cpu="2", min_instances=2, max_instances=100, timeout_s=30),
            access=Access(
                publishes=(SHOPPER_EVENTS_TOPIC, REJECTED_EVENTS_TOPIC),
                bigtable_writes=(
                    SHOPPER_EVENTS_TABLE,
                    EVENT_IDS_TABLE,
                    EVENT_HOURS_TABLE,
                    REJECTED_EVENTS_TABLE,
                    RATE_LIMITS_TABLE,
                ),
                # Rates, suppression list; API keys.
                firestore_reads=(DEFAULT_DATABASE, CREDENTIALS_DATABASE),
                secrets=(SHOPPER_HASH_KEY_SECRET,),
            ),
        ),
        Function(
            name="experiences",
            signature="http",
            entry_point="experiences",
            public=True,
            description="Experiences API: GET /v1/experiences (X-Shopper-Id; ?after= waits)",
            env_url_name="EXPERIENCES_URL",
            # A request waiting for its decision (?after=) holds a thread for the decision's
            # latency, ~0.1 s (docs/BENCHMARKS.md): threads, not instances, absorb waits.
            local_threads=16,
            # A waiting request mostly sleeps: one thread for each admitted one.
            sizing=Sizing(
                min_instances=2, max_instances=50, concurrency=80, threads=80, timeout_s=15
            ),
            access=Access(
                bigtable_reads=(SHOPPER_STATE_TABLE, PRIVACY_MARKS_TABLE),
                # Identity versions; API keys.
                firestore_reads=(DEFAULT_DATABASE, CREDENTIALS_DATABASE),
                # Verifies shopper signatures; hashes shoppers to read their privacy marks.
                secrets=(SHOPPER_IDENTITY_KEY_SECRET, SHOPPER_HASH_KEY_SECRET),
            ),
        ),
        Function(
            name="campaigns",
            signature="http",
            entry_point="campaigns",
            # Reached by the CSMs' browsers: the function checks its own credentials (CSM
            # access keys with roles, docs/CAMPAIGNS.md), as the tracker endpoints check
            # API keys; nothing is served without one but the login page and OpenAPI.
            public=True,
            description="Campaigns API, back office and reports: /v1/campaigns, /campaigns",
            env_url_name="CAMPAIGNS_URL",
            local_threads=4,
            sizing=Sizing(min_instances=0, max_instances=5, timeout_s=120),
            access=Access(
                publishes=(CAMPAIGN_CHANGES_TOPIC,),
                firestore_writes=(DEFAULT_DATABASE, BACK_OFFICE_DATABASE),  # campaigns; sessions
                firestore_reads=(CREDENTIALS_DATABASE,),  # CSM accounts; retailers with a key
                bigquery_reads=(BIGQUERY_DATASET,),
            ),
        ),
        Function(
            name=PLAYS_FUNCTION,
            signature="http",
            entry_point="plays",
            public=True,  # tracker-facing, like ingest_events: the retailer's X-Api-Key
            description="Rewards game: POST /v1/plays, POST /v1/plays/{play_id}/claim",
            env_url_name="PLAYS_URL",
            local_threads=8,
            sizing=Sizing(min_instances=1, max_instances=20, timeout_s=30),
            access=Access(
                publishes=(PLAYS_TOPIC,),
                # (default): campaigns read, Campaign.budget_exhausted written.
                firestore_writes=(DEFAULT_DATABASE, REWARDS_DATABASE),
                bigtable_reads=(PRIVACY_MARKS_TABLE,),
                firestore_reads=(CREDENTIALS_DATABASE,),  # API keys
                # Play tokens; shopper signatures of browser calls; privacy marks' hashes.
                secrets=(
                    PLAY_SIGNING_KEY_SECRET,
                    SHOPPER_IDENTITY_KEY_SECRET,
                    SHOPPER_HASH_KEY_SECRET,
                ),
            ),
        ),
        Function(
            name=ERASURE_FUNCTION,
            signature="http",
            entry_point="erasure_requests",
            public=True,  # retailers' back ends, authenticated by their X-Api-Key
            description="Erasure requests and objections: POST/GET /v1/erasure-requests, "
            "POST /v1/suppressions (docs/PRIVACY.md)",
            env_url_name="ERASURE_URL",
            local_threads=4,
            sizing=Sizing(min_instances=0, max_instances=5, timeout_s=30),
            access=Access(
                firestore_writes=(DEFAULT_DATABASE,),
                bigtable_writes=(PRIVACY_MARKS_TABLE,),  # marks written before it answers
                firestore_reads=(CREDENTIALS_DATABASE,),  # API keys
                secrets=(SHOPPER_HASH_KEY_SECRET,),
            ),
        ),
        Function(
            name=PRIVACY_FUNCTION,
            signature="http",
            entry_point="privacy_maintenance",
            public=False,  # Cloud Scheduler only (OIDC)
            description="POST /purge (retention), POST /erasures/run (pending erasure "
            "requests): every store (docs/PRIVACY.md)",
            env_url_name="PRIVACY_MAINTENANCE_URL",
            # One sweep at a time: an erasure request's receipts are saved as it goes.
            local_threads=1,
            sizing=Sizing(
                memory="1Gi", min_instances=0, max_instances=1, concurrency=1, timeout_s=1800
            ),
            access=Access(
                bigtable_writes=(
                    SHOPPER_EVENTS_TABLE,
                    EVENT_IDS_TABLE,
                    EVENT_HOURS_TABLE,
                    SHOPPER_STATE_TABLE,
                    EXPERIENCE_TREES_TABLE,
                    REJECTED_EVENTS_TABLE,
                ),
                bigquery_writes=(BIGQUERY_DATASET, LANDING_DATASET),
                firestore_writes=(DEFAULT_DATABASE, REWARDS_DATABASE),
                firestore_reads=(CREDENTIALS_DATABASE,),  # the retailers that hold a key
                secrets=(SHOPPER_HASH_KEY_SECRET,),
            ),
        ),
        Function(
            name=NIGHTLY_STEPS_FUNCTION,
            signature="http",
            entry_point="nightly_steps",
            public=False,  # invoked by the nightly workflow's service account only (OIDC)
            description="Nightly steps: POST /runs, POST /steps/{name} (docs/NIGHTLY.md)",
            env_url_name="NIGHTLY_STEPS_URL",
            local_threads=4,
            sizing=Sizing(memory="4Gi", cpu="2", min_instances=0, max_instances=1, timeout_s=1800),
            access=Access(
                bigquery_writes=(BIGQUERY_DATASET,),
                bigtable_writes=(EXPERIENCE_TREES_TABLE,),
                bigtable_reads=(PRIVACY_MARKS_TABLE,),  # no tree for a marked shopper
                firestore_writes=(DEFAULT_DATABASE,),
                bucket_writes=(NIGHTLY_ARTIFACTS_BUCKET,),
                secrets=(SHOPPER_HASH_KEY_SECRET,),
            ),
        ),
        Function(
            name=COMPACTION_FUNCTION,
            signature="http",
            entry_point="compact_read_models",
            public=False,  # Cloud Scheduler only (OIDC)
            description="Landing rows into the read models, exactly once; every minute "
            "(docs/FREEZER.md)",
            env_url_name="COMPACTION_URL",
            local_threads=2,  # a run takes a minute: the health probe is answered beside it
            # One run at a time is the design (a lease makes a second one wait anyway).
            sizing=Sizing(min_instances=0, max_instances=1, concurrency=1, timeout_s=300),
            access=Access(
                bigquery_writes=(BIGQUERY_DATASET,),  # MERGE into the read models
                bigquery_reads=(LANDING_DATASET,),
                firestore_writes=(DEFAULT_DATABASE,),  # lease and watermarks
            ),
        ),
        Function(
            name=CAMPAIGN_STATS_FUNCTION,
            signature="http",
            entry_point="refresh_campaign_stats",
            public=False,  # Cloud Scheduler only (OIDC)
            description="The portfolio's figures of every campaign, in one BigQuery query, "
            "saved to Firestore for the back office; every 5 minutes (docs/CAMPAIGNS.md)",
            env_url_name="CAMPAIGN_STATS_URL",
            sizing=Sizing(min_instances=0, max_instances=1, concurrency=1, timeout_s=300),
            access=Access(
                bigquery_reads=(BIGQUERY_DATASET,),
                firestore_writes=(DEFAULT_DATABASE,),  # campaigns read, campaign_stats written
            ),
        ),
    ),
    workers=(
        Worker(
            name="freeze_events",
            subscription=FREEZER_SUBSCRIPTION,
            description="Freezer: shopper events appended to the BigQuery landing tables "
            "(pull worker; Storage Write API)",
            instances=2,
            # 10,000 events/s at ~1,000 a second an instance, ~10 s of lag at equilibrium
            # (docs/CAPACITY.md, "How capacity follows load").
            cloud_scaling=BacklogScaling(
                min_instances=1, max_instances=12, backlog_per_instance=10_000
            ),
            sizing=Sizing(memory="2Gi"),
            access=Access(
                publishes=(SHOPPER_EVENTS_DEAD_LETTER_TOPIC,),
                # The landing tables (Storage Write API), dead_letters in the read models'.
                bigquery_writes=(LANDING_DATASET, BIGQUERY_DATASET),
                bigtable_reads=(PRIVACY_MARKS_TABLE,),
                secrets=(SHOPPER_HASH_KEY_SECRET,),
            ),
        ),
        Worker(
            name="decide_events",
            subscription=DECIDER_SUBSCRIPTION,
            description="Decisions: shopper events along their experience trees",
            instances=4,
            sizing=Sizing(memory="1Gi"),
            # In the cloud: its push form, scaled by Cloud Run on requests in flight; 40
            # threads of I/O-bound calls per vCPU, up to 60 instances: 10,000 events/s at
            # ~25 ms each with headroom (docs/CAPACITY.md, "Serving capacity").
            cloud_delivery="push",
            push_entry_point="decide_event",
            push_sizing=Sizing(
                memory="1Gi",
                cpu="1",
                min_instances=2,
                max_instances=60,
                concurrency=40,
                threads=40,
                timeout_s=60,
            ),
            access=Access(
                publishes=(SHOPPER_EXPERIENCES_TOPIC, SHOPPER_EVENTS_DEAD_LETTER_TOPIC),
                bigtable_reads=(EXPERIENCE_TREES_TABLE, PRIVACY_MARKS_TABLE),
                bigtable_writes=(SHOPPER_STATE_TABLE,),
                firestore_reads=(DEFAULT_DATABASE,),
                bigquery_writes=(BIGQUERY_DATASET,),  # dead-letter counts
                secrets=(PLAY_SIGNING_KEY_SECRET, SHOPPER_HASH_KEY_SECRET),
            ),
        ),
        Worker(
            name="freeze_decisions",
            subscription=DECISION_FREEZER_SUBSCRIPTION,
            description="Decisions into BigQuery read models (pull worker)",
            cloud_scaling=BacklogScaling(
                min_instances=1, max_instances=12, backlog_per_instance=10_000
            ),
            sizing=Sizing(memory="1Gi"),
            access=Access(
                publishes=(SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC,),
                bigquery_writes=(BIGQUERY_DATASET,),
                bigtable_reads=(PRIVACY_MARKS_TABLE,),
                secrets=(SHOPPER_HASH_KEY_SECRET,),
            ),
        ),
        Worker(
            name=VOID_PLAYS_WORKER,
            subscription=VOID_PLAYS_SUBSCRIPTION,
            description="Rewards: a cancelled or returned order voids its unpaid wins (pull)",
            access=Access(
                publishes=(PLAYS_TOPIC, SHOPPER_EVENTS_DEAD_LETTER_TOPIC),
                # (default): Campaign.budget_exhausted cleared when a void frees a slot.
                firestore_writes=(DEFAULT_DATABASE, REWARDS_DATABASE),
                bigquery_writes=(BIGQUERY_DATASET,),  # dead-letter counts
            ),
        ),
        Worker(
            name=FREEZE_PLAYS_WORKER,
            subscription=PLAYS_FREEZER_SUBSCRIPTION,
            description="Rewards: plays into the BigQuery plays table (pull worker)",
            cloud_scaling=BacklogScaling(
                min_instances=1, max_instances=2, backlog_per_instance=5_000
            ),
            access=Access(
                publishes=(PLAYS_DEAD_LETTER_TOPIC,),
                bigquery_writes=(BIGQUERY_DATASET,),
                bigtable_reads=(PRIVACY_MARKS_TABLE,),
                secrets=(SHOPPER_HASH_KEY_SECRET,),
            ),
        ),
        Worker(
            name=RECOMPILE_TREES_WORKER,
            subscription=RECOMPILE_TREES_SUBSCRIPTION,
            description="Campaign changes: the touched retailers' default trees recompiled "
            "(pull worker)",
            # One instance, one batch at a time: two recompilations never race, so the
            # last tree written is compiled from the last campaigns read.
            instances=1,
            access=Access(
                publishes=(CAMPAIGN_CHANGES_DEAD_LETTER_TOPIC,),
                firestore_reads=(DEFAULT_DATABASE,),
                bigtable_writes=(EXPERIENCE_TREES_TABLE,),
                bigquery_writes=(BIGQUERY_DATASET,),  # dead-letter counts
            ),
        ),
    ),
    scheduler_jobs=(
        SchedulerJob(
            name=RETENTION_PURGE_JOB,
            schedule="15 3 * * *",  # after the nightly run has read yesterday's history
            function=PRIVACY_FUNCTION,
            path="/purge",
        ),
        SchedulerJob(
            name=ERASURE_SWEEP_JOB,
            schedule="* * * * *",  # runs pending erasure requests; retries pending stores
            function=PRIVACY_FUNCTION,
            path="/erasures/run",
        ),
        SchedulerJob(
            name=CAMPAIGN_STATS_JOB,
            schedule="*/5 * * * *",  # the portfolio's figures: 5 minutes old at most
            function=CAMPAIGN_STATS_FUNCTION,
            path="/",
        ),
        SchedulerJob(
            name=COMPACTION_JOB,
            schedule="* * * * *",  # Cloud Scheduler's finest; passes every few seconds inside
            function=COMPACTION_FUNCTION,
            path="/",
        ),
    ),
    secrets=(
        Secret(
            name=PLAY_SIGNING_KEY_SECRET,
            env="PLAY_SIGNING_KEY",
            description="HMAC key that signs play tokens (decide_events)",
        ),
        Secret(
            name=SHOPPER_HASH_KEY_SECRET,
            env="SHOPPER_HASH_KEY",
            description="HMAC key of shopper hashes: suppression list, privacy marks, audit",
        ),
        Secret(
            name=SHOPPER_IDENTITY_KEY_SECRET,
            env="SHOPPER_IDENTITY_KEY",
            description="Master key of the retailers' shopper identity secrets (signatures)",
        ),
    ),
    jobs=(
        Job(
            name=NIGHTLY_SHARDS_JOB,
            module="functions.nightly_shards.job",
            description="Nightly shards: score and compile the trees of one hash shard of "
            "shoppers per task (docs/NIGHTLY.md)",
            tasks=NIGHTLY_SHARD_TASKS,
            max_retries=3,  # per task: a crashed task is retried alone
            sizing=Sizing(memory="4Gi", cpu="2", timeout_s=3600),
            access=Access(
                bigquery_writes=(BIGQUERY_DATASET,),
                bigtable_writes=(EXPERIENCE_TREES_TABLE,),
                bigtable_reads=(PRIVACY_MARKS_TABLE,),
                firestore_writes=(DEFAULT_DATABASE,),
                bucket_reads=(NIGHTLY_ARTIFACTS_BUCKET,),
                secrets=(SHOPPER_HASH_KEY_SECRET,),
            ),
        ),
    ),
    buckets=(
        Bucket(
            name=NIGHTLY_ARTIFACTS_BUCKET,
            description="nightly models and run metadata, nightly/{run_id}/ (docs/NIGHTLY.md)",
            delete_after_days=NIGHTLY_ARTIFACTS_DAYS,
        ),
    ),
    workflows=(
        Workflow(
            name=NIGHTLY_WORKFLOW,
            description="features -> train -> evaluate and gate -> score -> compile trees "
            "-> publish (docs/NIGHTLY.md)",
            schedule="30 2 * * *",  # after the day's last baskets are frozen
            argument="{}",  # a new run: run id from the execution, cut-off yesterday
            access=Access(invokes=(NIGHTLY_STEPS_FUNCTION,), runs_jobs=(NIGHTLY_SHARDS_JOB,)),
        ),
    ),
)
