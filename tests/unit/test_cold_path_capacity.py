"""The cold path's declared schedule and batch sizes, held inside BigQuery's documented
limits (the figures and their sources: docs/CAPACITY.md)."""

from __future__ import annotations

from croniter import croniter

from shared.freezer.bigquery_landing import APPEND_TIMEOUT_S, MAX_REQUEST_BYTES
from shared.freezer.read_models import LANDINGS, LATE_WINDOW, READ_MODELS
from shared.system.resources import COMPACTION_FUNCTION, COMPACTION_JOB, SYSTEM
from shared.system.settings import CompactionSettings, FreezerSettings

# https://cloud.google.com/bigquery/quotas#write-api-limits
APPEND_ROWS_REQUEST_MAX_BYTES = 10 * 1024 * 1024
REGIONAL_CONNECTIONS = 1_000  # concurrent Storage Write connections, outside us/eu
REGIONAL_THROUGHPUT_BYTES_S = 300 * 1024 * 1024
# https://cloud.google.com/bigquery/docs/data-manipulation-language (mutating DML concurrency)
RUNNING_MUTATING_DML_PER_TABLE = 2
# https://cloud.google.com/bigquery/quotas#partitioned_tables
PARTITIONS_PER_TABLE = 10_000
# Our own budget (docs/CAPACITY.md): one MERGE per table per minute in the cloud.
MERGES_PER_TABLE_PER_DAY_BUDGET = 1_440

PEAK_EVENTS_S = 10_000
ROWS_PER_EVENT = 1.4  # orders add their lines (bench.ingest's traffic mix)
ROW_BYTES = 400  # the widest landing row, serialized, with room to spare
MAX_WORKER_INSTANCES = 20


def settings() -> CompactionSettings:
    """The cloud's: the declared defaults (the local stack's environment overrides some)."""
    return CompactionSettings.model_construct(project="p")


def test_the_compaction_runs_at_most_one_merge_per_table_at_a_time_and_within_the_budget() -> None:
    s = settings()
    job = next(j for j in SYSTEM.scheduler_jobs if j.name == COMPACTION_JOB)
    assert job.function == COMPACTION_FUNCTION
    fires = croniter(job.schedule)
    first, second = fires.get_next(float), fires.get_next(float)
    assert second - first == 60  # Cloud Scheduler's finest schedule
    passes_per_run = int(s.run_for_s // s.pass_interval_s) + 1
    assert passes_per_run * 24 * 60 <= MERGES_PER_TABLE_PER_DAY_BUDGET
    # The lease: one holder, whose statements end (server-side timeout) before it expires.
    assert s.job_timeout_s < s.lease_s
    assert RUNNING_MUTATING_DML_PER_TABLE >= 1
    function = SYSTEM.function(COMPACTION_FUNCTION)
    assert function.sizing.max_instances == 1
    assert function.sizing.timeout_s > s.run_for_s + s.job_timeout_s * 3


def test_an_append_is_visible_before_the_compaction_looks_past_it() -> None:
    assert FreezerSettings.model_fields["append_timeout_s"].default == APPEND_TIMEOUT_S
    assert settings().lag_s > APPEND_TIMEOUT_S


def test_appends_fit_the_storage_write_api_at_the_peak() -> None:
    batch = FreezerSettings.model_fields["batch_max_messages"].default
    assert MAX_REQUEST_BYTES < APPEND_ROWS_REQUEST_MAX_BYTES
    assert batch * ROWS_PER_EVENT * ROW_BYTES < APPEND_ROWS_REQUEST_MAX_BYTES
    # One connection per pull loop and landing table at once in each worker instance (the
    # default stream; a loop appends to every landing table in parallel).
    loops = FreezerSettings.model_fields["pull_loops"].default
    assert MAX_WORKER_INSTANCES * loops * len(LANDINGS) < REGIONAL_CONNECTIONS
    assert PEAK_EVENTS_S * ROWS_PER_EVENT * ROW_BYTES < REGIONAL_THROUGHPUT_BYTES_S / 50


def test_partition_counts_stay_under_the_table_limit() -> None:
    declared = {(t.dataset, t.name): t for t in SYSTEM.bigquery_tables}
    for landing in LANDINGS.values():
        table = declared[(landing.dataset, landing.name)]
        assert table.partition_type == "HOUR"
        assert table.partition_expiration_days is not None
        assert table.partition_expiration_days * 24 < PARTITIONS_PER_TABLE
    for read_model in READ_MODELS:
        table = declared[(read_model.dataset, read_model.name)]
        assert table.partition_expiration_days is not None
        assert table.partition_expiration_days < PARTITIONS_PER_TABLE
    # A slice's MERGE reads at most the late window's daily partitions, and today's.
    assert LATE_WINDOW.days + 1 <= 4
