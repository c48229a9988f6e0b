"""freeze_events, worker form: pull loops (``FREEZER_PULL_LOOPS``, 4), batches of up to
2,000 messages each.

Run: ``python -m functions.freeze_events.worker``. Each batch is appended to the read
models' landing tables (one append per table, in parallel); it is acknowledged once the
appends are durable, and its ack deadline reset (redelivered) on a transient error. While
some loops wait for their appends, the others pull and parse the next batches. Poison messages
are dead-lettered inside ``freeze`` and acknowledged.

Synchronous ``Pull`` calls fill a batch: on the local emulator a pull returns up to 100
messages in ~10 ms, where streaming pull handed this worker about one message at a time
(docs/BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import threading

from shared.freezer.composition import freezer as dependencies
from shared.freezer.service import freeze
from shared.platform.pubsub_pull import main, serve
from shared.platform.sinks import TransientSinkError

log = logging.getLogger("freeze_events.worker")


def run(stop: threading.Event) -> None:
    deps = dependencies()
    settings = deps.settings
    serve(
        stop,
        project=settings.project,
        subscription=settings.subscription,
        heartbeat_file=settings.heartbeat_file,
        max_messages=settings.batch_max_messages,
        max_wait_s=settings.batch_max_wait_s,
        loops=settings.pull_loops,
        process=lambda batch: freeze(
            batch,
            sink=deps.sink,
            dead_letters=deps.dead_letters,
            privacy=deps.privacy,
            late_window=deps.late_window,
        ),
        transient=(TransientSinkError,),
        log=log,
    )


if __name__ == "__main__":
    main(run)
