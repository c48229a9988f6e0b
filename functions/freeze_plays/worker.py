"""freeze_plays, worker form: plays from the ``plays`` topic into BigQuery ``plays``.

Run: ``python -m functions.freeze_plays.worker``. Batches of up to 2,000 play states,
one MERGE on play_id (new plays inserted, voids and payments moving rows forward);
acknowledged once written, redelivered on a transient error; messages that are not
plays are dead-lettered with their reason.
"""

from __future__ import annotations

import logging
import threading

from shared.contract.messages import InboundMessage
from shared.platform.pubsub_pull import main, serve
from shared.platform.sinks import TransientSinkError
from shared.rewards.composition import play_freezer as dependencies
from shared.rewards.play_freezer import freeze_plays

log = logging.getLogger("freeze_plays.worker")


def _freeze(batch: list[InboundMessage]) -> None:
    deps = dependencies()
    written = freeze_plays(
        batch, sink=deps.sink, dead_letters=deps.dead_letters, privacy=deps.privacy
    )
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
