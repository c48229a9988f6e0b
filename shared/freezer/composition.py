"""The freezer's dependencies, built once per process.

Shared by ``freeze_events``'s two entry points (``functions/freeze_events/worker.py`` and
``functions/freeze_events/main.py``), so that both run the same service on the same adapters.
Clients are created on first use, never at import. The read models' rows go to their
landing tables (Storage Write API appends); ``compaction`` builds the compaction's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.freezer.compaction import CompactionLedger, SliceWarehouse
from shared.freezer.service import ReadModelSink
from shared.platform import logs
from shared.platform.sinks import DeadLetterSink
from shared.privacy_marks.marks import Gate
from shared.system.settings import CompactionSettings, FreezerSettings


@dataclass(frozen=True)
class FreezerDependencies:
    settings: FreezerSettings
    sink: ReadModelSink
    dead_letters: DeadLetterSink
    privacy: Gate
    late_window: timedelta


@functools.cache
def freezer() -> FreezerDependencies:
    from shared.freezer.bigquery_landing import (
        InsertAllLanding,
        StorageWriteLanding,
        write_client,
    )
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS, LANDINGS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout
    from shared.privacy_marks.bigtable_marks import privacy_gate

    settings = FreezerSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    counted = BigQueryReadModelSink(
        bigquery, settings.project, (DEAD_LETTERS,), settings.bigquery_retry_s
    )
    landing: ReadModelSink
    if settings.landing_api == "insert_all":
        landing = InsertAllLanding(
            bigquery,
            settings.project,
            LANDINGS,
            clock=lambda: datetime.now(UTC),
            timeout_s=settings.append_timeout_s,
        )
    else:
        landing = StorageWriteLanding(
            write_client(settings.bigquery_storage_emulator_host),
            settings.project,
            LANDINGS,
            clock=lambda: datetime.now(UTC),
            timeout_s=settings.append_timeout_s,
        )
    publisher = clients.publisher_api()
    return FreezerDependencies(
        settings=settings,
        sink=landing,
        dead_letters=DeadLetterFanout(
            publisher,
            clients.topic_path(settings.project, settings.dead_letter_topic),
            counted,
            DEAD_LETTERS.name,
            source="freezer",
        ),
        privacy=privacy_gate(settings),
        late_window=timedelta(days=settings.late_window_days),
    )


@dataclass(frozen=True)
class CompactionDependencies:
    settings: CompactionSettings
    ledger: CompactionLedger
    warehouse: SliceWarehouse


@functools.cache
def compaction() -> CompactionDependencies:
    from shared.freezer.bigquery_compaction import BigQuerySlices
    from shared.freezer.firestore_compaction import FirestoreCompactionLedger
    from shared.freezer.read_models import LANDINGS, READ_MODELS
    from shared.platform import clients

    settings = CompactionSettings()
    logs.configure(settings.log_level)
    return CompactionDependencies(
        settings=settings,
        ledger=FirestoreCompactionLedger(
            clients.firestore_client(settings.project, settings.firestore_database)
        ),
        warehouse=BigQuerySlices(
            clients.bigquery_client(settings.project, settings.bigquery_emulator_host),
            settings.project,
            {t.name: t for t in READ_MODELS},
            LANDINGS,
            settings.job_timeout_s,
        ),
    )


def compact_now(run_for_s: float | None = None) -> dict[str, object]:
    """One run of the compaction (passes for ``run_for_s``, the settings' by default)."""
    import time
    import uuid
    from datetime import timedelta

    from shared.freezer.compaction import Cadence, run
    from shared.freezer.read_models import LANDING_RETENTION_DAYS, READ_MODELS

    deps = compaction()
    s = deps.settings
    now = datetime.now(UTC)
    outcome = run(
        deps.ledger,
        deps.warehouse,
        [t.name for t in READ_MODELS],
        Cadence(
            run_for_s=s.run_for_s if run_for_s is None else run_for_s,
            pass_interval_s=s.pass_interval_s,
            lag=timedelta(seconds=s.lag_s),
            max_slice=timedelta(seconds=s.max_slice_s),
            lease_s=s.lease_s,
            start=now - timedelta(days=LANDING_RETENTION_DAYS),
        ),
        owner=uuid.uuid4().hex,
        clock=lambda: datetime.now(UTC),
        sleep=time.sleep,
    )
    return {"passes": outcome.passes, "busy": outcome.busy, "inserted": outcome.inserted}
