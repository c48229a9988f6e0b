"""Settings of each function: one frozen pydantic-settings object, prefixed env names."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.nightly.shards import BUCKETS
from shared.platform.resource_model import bucket_name
from shared.system.resources import (
    BACK_OFFICE_DATABASE,
    BIGQUERY_DATASET,
    BIGTABLE_INSTANCE,
    CAMPAIGN_CHANGES_DEAD_LETTER_TOPIC,
    CAMPAIGN_CHANGES_TOPIC,
    CREDENTIALS_DATABASE,
    DECIDER_SUBSCRIPTION,
    DECISION_FREEZER_SUBSCRIPTION,
    DEFAULT_DATABASE,
    FREEZER_SUBSCRIPTION,
    NIGHTLY_ARTIFACTS_BUCKET,
    NIGHTLY_SHARD_TASKS,
    PLAYS_DEAD_LETTER_TOPIC,
    PLAYS_FREEZER_SUBSCRIPTION,
    PLAYS_TOPIC,
    RECOMPILE_TREES_SUBSCRIPTION,
    REJECTED_EVENTS_TOPIC,
    REWARDS_DATABASE,
    SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
    SHOPPER_EVENTS_TOPIC,
    SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC,
    SHOPPER_EXPERIENCES_TOPIC,
    VOID_PLAYS_SUBSCRIPTION,
)


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    project: str = Field(validation_alias=AliasChoices("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT"))
    bigquery_emulator_host: str | None = Field(
        default=None, validation_alias="BIGQUERY_EMULATOR_HOST"
    )
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    # The Bigtable app profile the component's requests name (docs/DEPLOY.md, "Bigtable
    # replication"): the declared single-cluster profile in the cloud; unset, the
    # instance's default profile (the emulator has no profiles).
    bigtable_app_profile: str | None = Field(default=None, validation_alias="BIGTABLE_APP_PROFILE")
    # API keys and CSM accounts (read only for every function: docs/PRIVACY.md).
    credentials_database: str = Field(
        default=CREDENTIALS_DATABASE, validation_alias="CREDENTIALS_DATABASE"
    )


class HashesShoppers(CloudSettings):
    """A component that reads privacy marks (docs/PRIVACY.md) hashes shoppers with this key."""

    shopper_hash_key: str = Field(min_length=16, validation_alias="SHOPPER_HASH_KEY")
    bigtable_instance: str = BIGTABLE_INSTANCE  # of the privacy marks


class IngestSettings(CloudSettings):
    """Settings of ``ingest_events`` (env prefix ``INGEST_``)."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", frozen=True, extra="ignore")

    bigtable_instance: str = BIGTABLE_INSTANCE
    events_topic: str = SHOPPER_EVENTS_TOPIC
    rejected_topic: str = REJECTED_EVENTS_TOPIC
    default_rate_limit_per_s: float = 20_000.0
    api_key_cache_ttl_s: float = 60.0
    publish_timeout_s: float = 10.0
    # The suppression list (objections to processing) is re-read at most this often.
    suppression_cache_ttl_s: float = 30.0
    shopper_hash_key: str = Field(min_length=16, validation_alias="SHOPPER_HASH_KEY")


class FreezerSettings(HashesShoppers):
    """Settings of ``freeze_events`` (env prefix ``FREEZER_``)."""

    model_config = SettingsConfigDict(env_prefix="FREEZER_", frozen=True, extra="ignore")

    subscription: str = FREEZER_SUBSCRIPTION
    dead_letter_topic: str = SHOPPER_EVENTS_DEAD_LETTER_TOPIC
    dataset: str = BIGQUERY_DATASET
    batch_max_messages: int = 2000
    batch_max_wait_s: float = 0.5
    # Batches held at once (each a pull loop): while some loops wait for their appends,
    # others pull and parse. 4 against 1: 3,600-4,700 events/s against 2,700 on the local
    # stack (docs/BENCHMARKS.md, bench-freeze).
    pull_loops: int = Field(default=4, ge=1)
    # How long a MERGE's transient HTTP errors are retried before the batch is redelivered.
    bigquery_retry_s: float = Field(default=10.0, gt=0)
    heartbeat_file: str | None = Field(default=None, validation_alias="WORKER_HEARTBEAT_FILE")
    # The Storage Write API's gRPC endpoint locally (the emulator); unset in the cloud.
    bigquery_storage_emulator_host: str | None = Field(
        default=None, validation_alias="BIGQUERY_STORAGE_EMULATOR_HOST"
    )
    # An append not answered within this is redelivered; below the compaction's lag.
    append_timeout_s: float = Field(default=10.0, gt=0)
    # storage_write in the cloud; insert_all on the local stack (bqemulator's Storage
    # Write API hangs beside concurrent queries: docs/EMULATORS.md).
    landing_api: Literal["storage_write", "insert_all"] = "storage_write"
    # Events dated further back than this before their ingestion are parked (the default
    # is ``read_models.LATE_WINDOW``, what the compaction's bounds are sized for).
    late_window_days: int = Field(default=3, ge=1)


class CompactionSettings(CloudSettings):
    """Settings of ``compact_read_models`` (env prefix ``COMPACTION_``; docs/FREEZER.md).

    Cloud Scheduler fires it every minute (its finest schedule); one invocation runs passes
    every ``pass_interval_s`` for ``run_for_s``, then releases the lease. In the cloud one
    pass per minute (docs/CAPACITY.md: each MERGE reads the day's row ids); the local stack
    runs a pass every 5 s for 50 s, so that tests see rows within seconds."""

    model_config = SettingsConfigDict(env_prefix="COMPACTION_", frozen=True, extra="ignore")

    pass_interval_s: float = Field(default=60.0, gt=0)
    run_for_s: float = Field(default=0.0, ge=0)
    # Landing rows stamped later than now - lag may still be in flight: above the
    # freezer's append deadline (10 s) plus clock skew between machines.
    lag_s: float = Field(default=15.0, gt=0)
    max_slice_s: float = Field(default=600.0, gt=0)
    # A statement's server-side timeout, and the lease: longer than it, so that a holder
    # that vanished has no statement left running when the next one takes over.
    job_timeout_s: float = Field(default=60.0, gt=0)
    lease_s: float = Field(default=120.0, gt=0)
    firestore_database: str = DEFAULT_DATABASE


class DeciderSettings(HashesShoppers):
    """Settings of ``decide_events`` (env prefix ``DECIDER_``)."""

    model_config = SettingsConfigDict(env_prefix="DECIDER_", frozen=True, extra="ignore")

    subscription: str = DECIDER_SUBSCRIPTION
    bigtable_instance: str = BIGTABLE_INSTANCE
    experiences_topic: str = SHOPPER_EXPERIENCES_TOPIC
    dead_letter_topic: str = SHOPPER_EVENTS_DEAD_LETTER_TOPIC
    # The key that signs play tokens (Secret Manager in the cloud); the local stack sets one.
    signing_key: str = Field(min_length=16, validation_alias="PLAY_SIGNING_KEY")
    batch_max_messages: int = 500
    pull_loops: int = Field(default=4, ge=1)  # some pull while others read, decide, write
    heartbeat_file: str | None = Field(default=None, validation_alias="WORKER_HEARTBEAT_FILE")
    # How long a retailer's default tree and the exhausted budgets are trusted: a campaign
    # change reaches decisions within this plus its recompilation (docs/CAMPAIGNS.md).
    default_tree_ttl_s: float = Field(default=2.0, gt=0)
    budget_ttl_s: float = Field(default=2.0, gt=0)


class ExperiencesSettings(HashesShoppers):
    """Settings of ``experiences`` (env prefix ``EXPERIENCES_``)."""

    model_config = SettingsConfigDict(env_prefix="EXPERIENCES_", frozen=True, extra="ignore")

    bigtable_instance: str = BIGTABLE_INSTANCE
    api_key_cache_ttl_s: float = 60.0
    identity_cache_ttl_s: float = 30.0
    # Shopper signatures of browser calls (Secret Manager in the cloud).
    identity_key: str = Field(min_length=16, validation_alias="SHOPPER_IDENTITY_KEY")
    # ``?after=<event_id>&wait_ms=``: the longest wait granted, and the re-read interval.
    max_wait_ms: int = Field(default=10_000, ge=0, le=14_000)  # under the 15 s timeout
    wait_poll_ms: float = Field(default=10.0, gt=0)


class DecisionFreezerSettings(HashesShoppers):
    """Settings of ``freeze_decisions`` (env prefix ``DECISION_FREEZER_``)."""

    model_config = SettingsConfigDict(env_prefix="DECISION_FREEZER_", frozen=True, extra="ignore")

    subscription: str = DECISION_FREEZER_SUBSCRIPTION
    dead_letter_topic: str = SHOPPER_EXPERIENCES_DEAD_LETTER_TOPIC
    batch_max_messages: int = 2000
    batch_max_wait_s: float = 0.5
    heartbeat_file: str | None = Field(default=None, validation_alias="WORKER_HEARTBEAT_FILE")


class NightlyStepsSettings(HashesShoppers):
    """Settings of ``nightly_steps`` (env prefix ``NIGHTLY_``)."""

    model_config = SettingsConfigDict(env_prefix="NIGHTLY_", frozen=True, extra="ignore")

    dataset: str = BIGQUERY_DATASET
    bigtable_instance: str = BIGTABLE_INSTANCE
    # Models and run metadata: the declared bucket, ``{project}-nightly-artifacts`` unless
    # set (the Cloud Storage emulator locally, STORAGE_EMULATOR_HOST).
    artifacts_bucket: str | None = None
    tree_validity_hours: int = Field(default=48, ge=1)
    basket_reward: str = "free delivery on this order"
    write_batch: int = Field(default=500, ge=1)
    # The relative lift over P-TopFreq the ranker needs to pass the gate (0.05: +5 %).
    gate_min_lift: float = Field(default=0.0, ge=0.0)

    # Tasks of the nightly_shards job when a run does not ask for a count: 1..1,024, the
    # shard buckets (Cloud Run allows 10,000 tasks per execution; a task owns >= 1 bucket).
    shard_tasks: int = Field(default=NIGHTLY_SHARD_TASKS, ge=1, le=BUCKETS)
    # Shoppers the ranker and the value model train on (a hash sample; all when fewer are
    # available). 2,500 stay within the full model's interval (docs/MODEL.md); the train
    # step's memory grows with it, not with the population (docs/NIGHTLY.md, "At scale").
    train_shoppers: int | None = Field(default=5_000, ge=100)
    # Shoppers the evaluate step judges the models on (a hash sample; all when fewer): its
    # memory grows with it, not with the population (docs/NIGHTLY.md, "At scale").
    evaluate_shoppers: int | None = Field(default=20_000, ge=100)
    # The Storage Read API's gRPC endpoint locally (the emulator); unset in the cloud.
    bigquery_storage_emulator_host: str | None = Field(
        default=None, validation_alias="BIGQUERY_STORAGE_EMULATOR_HOST"
    )
    # Shoppers a shard task holds at once (scored, recommended, compiled, written): its
    # memory depends on this, not on the population (docs/NIGHTLY.md, "Bounded memory").
    shard_batch_shoppers: int = Field(default=2_000, ge=1)
    # Shoppers per retailer the new-item neighbours are drawn from (a hash sample).
    neighbour_pool: int = Field(default=20_000, ge=100)

    @property
    def bucket(self) -> str:
        return self.artifacts_bucket or bucket_name(self.project, NIGHTLY_ARTIFACTS_BUCKET)


class NightlyShardSettings(NightlyStepsSettings):
    """One task of the ``nightly_shards`` Cloud Run job: the ``NIGHTLY_`` settings, and what
    Cloud Run sets (task index and count, attempt) and the workflow overrides (run id)."""

    task_index: int = Field(ge=0, validation_alias="CLOUD_RUN_TASK_INDEX")
    task_count: int = Field(ge=1, validation_alias="CLOUD_RUN_TASK_COUNT")
    task_attempt: int = Field(default=0, ge=0, validation_alias="CLOUD_RUN_TASK_ATTEMPT")
    run_id: str = Field(min_length=1, validation_alias="NIGHTLY_RUN_ID")
    # The workflow's test-only skip_model_steps: the run's rows were written for it.
    skip_scoring: bool = Field(default=False, validation_alias="NIGHTLY_SKIP_SCORING")


class CampaignsSettings(CloudSettings):
    """Settings of ``campaigns`` (env prefix ``CAMPAIGNS_``)."""

    model_config = SettingsConfigDict(env_prefix="CAMPAIGNS_", frozen=True, extra="ignore")

    dataset: str = BIGQUERY_DATASET
    account_cache_ttl_s: float = 30.0
    # The portfolio's saved figures (``refresh_campaign_stats``) are read at most this often.
    stats_cache_ttl_s: float = Field(default=30.0, ge=0)
    # Back-office sessions (docs/CAMPAIGNS.md, "Back office"): their own database.
    back_office_database: str = BACK_OFFICE_DATABASE
    session_absolute_s: int = Field(default=8 * 3600, ge=1)  # from login, whatever the use
    session_idle_s: int = Field(default=30 * 60, ge=1)  # since the session's last request
    # Failed logins: this many per window per account key and per client, then 429.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_s: int = Field(default=15 * 60, ge=1)
    # Every saved change is published here; ``recompile_trees`` recompiles default trees.
    changes_topic: str = CAMPAIGN_CHANGES_TOPIC


class CampaignStatsSettings(CloudSettings):
    """Settings of ``refresh_campaign_stats`` (env prefix ``CAMPAIGN_STATS_``)."""

    model_config = SettingsConfigDict(env_prefix="CAMPAIGN_STATS_", frozen=True, extra="ignore")

    dataset: str = BIGQUERY_DATASET


class RecompileTreesSettings(CloudSettings):
    """Settings of ``recompile_trees`` (env prefix ``RECOMPILE_TREES_``)."""

    model_config = SettingsConfigDict(env_prefix="RECOMPILE_TREES_", frozen=True, extra="ignore")

    subscription: str = RECOMPILE_TREES_SUBSCRIPTION
    dead_letter_topic: str = CAMPAIGN_CHANGES_DEAD_LETTER_TOPIC
    bigtable_instance: str = BIGTABLE_INSTANCE
    batch_max_messages: int = 100
    # A burst of changes (a bulk pause) is recompiled once: wait this long to gather it.
    batch_max_wait_s: float = 0.2
    heartbeat_file: str | None = Field(default=None, validation_alias="WORKER_HEARTBEAT_FILE")


class PlaysSettings(HashesShoppers):
    """Settings of ``plays`` (env prefix ``PLAYS_``): the rewards game's HTTP function."""

    model_config = SettingsConfigDict(env_prefix="PLAYS_", frozen=True, extra="ignore")

    # The key that verifies play tokens (the one decide_events signs them with).
    signing_key: str = Field(min_length=16, validation_alias="PLAY_SIGNING_KEY")
    rewards_database: str = REWARDS_DATABASE
    plays_topic: str = PLAYS_TOPIC
    api_key_cache_ttl_s: float = 60.0
    identity_cache_ttl_s: float = 30.0
    # Shopper signatures of browser calls (Secret Manager in the cloud).
    identity_key: str = Field(min_length=16, validation_alias="SHOPPER_IDENTITY_KEY")


class VoidPlaysSettings(CloudSettings):
    """Settings of ``void_plays`` (env prefix ``VOID_PLAYS_``)."""

    model_config = SettingsConfigDict(env_prefix="VOID_PLAYS_", frozen=True, extra="ignore")

    subscription: str = VOID_PLAYS_SUBSCRIPTION
    dead_letter_topic: str = SHOPPER_EVENTS_DEAD_LETTER_TOPIC
    rewards_database: str = REWARDS_DATABASE
    plays_topic: str = PLAYS_TOPIC
    dataset: str = BIGQUERY_DATASET
    batch_max_messages: int = 1000
    batch_max_wait_s: float = 0.5
    heartbeat_file: str | None = Field(default=None, validation_alias="WORKER_HEARTBEAT_FILE")


class PlayFreezerSettings(HashesShoppers):
    """Settings of ``freeze_plays`` (env prefix ``PLAY_FREEZER_``)."""

    model_config = SettingsConfigDict(env_prefix="PLAY_FREEZER_", frozen=True, extra="ignore")

    subscription: str = PLAYS_FREEZER_SUBSCRIPTION
    dead_letter_topic: str = PLAYS_DEAD_LETTER_TOPIC
    batch_max_messages: int = 2000
    batch_max_wait_s: float = 0.5
    heartbeat_file: str | None = Field(default=None, validation_alias="WORKER_HEARTBEAT_FILE")


class RewardsOpsSettings(CloudSettings):
    """Settings of the operators' rewards CLI (env prefix ``REWARDS_``)."""

    model_config = SettingsConfigDict(env_prefix="REWARDS_", frozen=True, extra="ignore")

    rewards_database: str = REWARDS_DATABASE
    plays_topic: str = PLAYS_TOPIC


class ErasureSettings(CloudSettings):
    """Settings of ``erasure_requests`` (env prefix ``ERASURE_``)."""

    model_config = SettingsConfigDict(env_prefix="ERASURE_", frozen=True, extra="ignore")

    api_key_cache_ttl_s: float = 60.0
    bigtable_instance: str = BIGTABLE_INSTANCE  # privacy marks
    shopper_hash_key: str = Field(min_length=16, validation_alias="SHOPPER_HASH_KEY")


class PrivacySettings(CloudSettings):
    """Settings of ``privacy_maintenance`` (env prefix ``PRIVACY_``)."""

    model_config = SettingsConfigDict(env_prefix="PRIVACY_", frozen=True, extra="ignore")

    bigtable_instance: str = BIGTABLE_INSTANCE
    dataset: str = BIGQUERY_DATASET
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    requests_per_sweep: int = Field(default=20, ge=1)
    # An erasure is done only after a last pass over every store that starts this long
    # after the request: longer than any write that had not seen the shopper's mark yet
    # (ingest's suppression cache, a function's timeout, a worker's batch): docs/PRIVACY.md.
    erasure_settle_s: float = Field(default=600.0, ge=0)
    # ... and after any nightly run in progress (its feature tables may hold the shopper's
    # rows read before the first pass); a run recorded ``running`` for longer than this is
    # dead (the nightly's window is an hour; each step call times out after 30 minutes).
    nightly_max_run_s: float = Field(default=43_200.0, gt=0)
    shopper_hash_key: str = Field(min_length=16, validation_alias="SHOPPER_HASH_KEY")
