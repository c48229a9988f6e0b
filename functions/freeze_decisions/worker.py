"""freeze_decisions, worker form: decisions from ``shopper-experiences`` into BigQuery.

Run: ``python -m functions.freeze_decisions.worker``. Batches of up to 2,000 decisions,
one MERGE per table; acknowledged once written, redelivered on a transient error;
messages that are not decisions are dead-lettered with their reason.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from shared import logs
from shared.adapters.pubsub_pull import inbound, pull_batch, settle
from shared.decision_read_models import transform_decisions
from shared.freezer import DeadLetterSink, ReadModelSink, TransientSinkError
from shared.settings import DecisionFreezerSettings

log = logging.getLogger("freeze_decisions.worker")


@dataclass(frozen=True)
class DecisionFreezer:
    settings: DecisionFreezerSettings
    sink: ReadModelSink
    dead_letters: DeadLetterSink


@functools.cache
def dependencies() -> DecisionFreezer:
    from shared.adapters import clients
    from shared.adapters.bigquery_read_models import BigQueryReadModelSink
    from shared.adapters.dead_letters import DeadLetterFanout
    from shared.decision_read_models import DECISION_TABLES
    from shared.read_models import DEAD_LETTERS

    settings = DecisionFreezerSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    sink = BigQueryReadModelSink(bigquery, settings.project, (*DECISION_TABLES, DEAD_LETTERS))
    return DecisionFreezer(
        settings=settings,
        sink=sink,
        dead_letters=DeadLetterFanout(
            clients.publisher_api(),
            clients.topic_path(settings.project, settings.dead_letter_topic),
            sink,
            DEAD_LETTERS.name,
            source="decision-freezer",
        ),
    )


def run(stop: threading.Event) -> None:
    from google.api_core.exceptions import DeadlineExceeded, GoogleAPIError
    from google.cloud.pubsub_v1 import SubscriberClient

    warnings.filterwarnings("ignore", "The return_immediately flag is deprecated")
    deps = dependencies()
    settings = deps.settings
    subscriber = SubscriberClient()
    path = subscriber.subscription_path(settings.project, settings.subscription)
    heartbeat = Path(settings.heartbeat_file) if settings.heartbeat_file else None
    log.info("decision freezer started", extra={"subscription": path})
    try:
        while not stop.is_set():
            if heartbeat:
                heartbeat.write_text(str(time.time()))
            try:
                batch = pull_batch(
                    subscriber, path, settings.batch_max_messages, settings.batch_max_wait_s
                )
            except DeadlineExceeded:
                continue  # nothing to pull for a while
            except GoogleAPIError as exc:  # Pub/Sub restarting, subscription not there yet
                log.warning("pull failed: retrying", extra={"error": str(exc)})
                time.sleep(1)
                continue
            if not batch:
                continue
            tables, poison = transform_decisions([inbound(m) for m in batch])
            try:
                if poison:
                    deps.dead_letters.send(poison)
                inserted = {t: deps.sink.write(t, rows) for t, rows in sorted(tables.items())}
            except TransientSinkError:
                log.exception("decisions not frozen: redelivered later", extra={"size": len(batch)})
                settle(subscriber, path, batch, ack=False)
                time.sleep(1)
                continue
            log.info("decisions frozen", extra={"messages": len(batch), "rows_inserted": inserted})
            settle(subscriber, path, batch, ack=True)
    finally:
        subscriber.close()


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(stop)


if __name__ == "__main__":
    main()
