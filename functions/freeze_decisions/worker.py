"""freeze_decisions, worker form: decisions from ``shopper-experiences`` into BigQuery.

Run: ``python -m functions.freeze_decisions.worker``. Batches of up to 2,000 decisions,
one MERGE per table; acknowledged once written, redelivered on a transient error;
messages that are not decisions are dead-lettered with their reason.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass

from shared.contract.messages import InboundMessage
from shared.decisions.read_models import transform_decisions
from shared.freezer.service import ReadModelSink
from shared.platform import logs
from shared.platform.pubsub_pull import main, serve
from shared.platform.sinks import DeadLetterSink, TransientSinkError
from shared.system.settings import DecisionFreezerSettings

log = logging.getLogger("freeze_decisions.worker")


@dataclass(frozen=True)
class DecisionFreezer:
    settings: DecisionFreezerSettings
    sink: ReadModelSink
    dead_letters: DeadLetterSink


@functools.cache
def dependencies() -> DecisionFreezer:
    from shared.decisions.read_models import DECISION_TABLES
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout

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


def _freeze(batch: list[InboundMessage]) -> None:
    deps = dependencies()
    tables, poison = transform_decisions(batch)
    if poison:
        deps.dead_letters.send(poison)
    inserted = {t: deps.sink.write(t, rows) for t, rows in sorted(tables.items())}
    log.info("decisions frozen", extra={"messages": len(batch), "rows_inserted": inserted})


def run(stop: threading.Event) -> None:
    settings = dependencies().settings
    serve(
        stop,
        project=settings.project,
        subscription=settings.subscription,
        heartbeat_file=settings.heartbeat_file,
        max_messages=settings.batch_max_messages,
        max_wait_s=settings.batch_max_wait_s,
        process=_freeze,
        transient=(TransientSinkError,),
        log=log,
    )


if __name__ == "__main__":
    main(run)
