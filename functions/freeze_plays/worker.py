"""freeze_plays, worker form: plays from the ``plays`` topic into BigQuery ``plays``.

Run: ``python -m functions.freeze_plays.worker``. Batches of up to 2,000 play states,
one MERGE on play_id (new plays inserted, voids and payments moving rows forward);
acknowledged once written, redelivered on a transient error; messages that are not
plays are dead-lettered with their reason.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass

from shared.contract.messages import InboundMessage
from shared.platform import logs
from shared.platform.pubsub_pull import main, serve
from shared.platform.sinks import DeadLetterSink, TransientSinkError
from shared.rewards.play_freezer import PlaySink, transform_plays
from shared.system.settings import PlayFreezerSettings

log = logging.getLogger("freeze_plays.worker")


@dataclass(frozen=True)
class PlayFreezer:
    settings: PlayFreezerSettings
    sink: PlaySink
    dead_letters: DeadLetterSink


@functools.cache
def dependencies() -> PlayFreezer:
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout
    from shared.rewards.bigquery_plays import BigQueryPlaySink

    settings = PlayFreezerSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    return PlayFreezer(
        settings=settings,
        sink=BigQueryPlaySink(bigquery, settings.project),
        dead_letters=DeadLetterFanout(
            clients.publisher_api(),
            clients.topic_path(settings.project, settings.dead_letter_topic),
            BigQueryReadModelSink(bigquery, settings.project, (DEAD_LETTERS,)),
            DEAD_LETTERS.name,
            source="play-freezer",
        ),
    )


def _freeze(batch: list[InboundMessage]) -> None:
    deps = dependencies()
    rows, poison = transform_plays(batch)
    if poison:
        deps.dead_letters.send(poison)
    written = deps.sink.write(rows) if rows else 0
    log.info("plays frozen", extra={"messages": len(batch), "rows_written": written})


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
