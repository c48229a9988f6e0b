"""freeze_events, worker form: a pull loop, batches of up to 2,000 messages.

Run: ``python -m functions.freeze_events.worker``. Each batch is frozen with one MERGE
per read model; it is acknowledged once written, and its ack deadline reset (redelivered)
on a transient error. Poison messages are dead-lettered inside ``freeze`` and
acknowledged.

Synchronous ``Pull`` calls fill a batch: on the local emulator a pull returns up to 100
messages in ~10 ms, where streaming pull handed this worker about one message at a time
(docs/BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import warnings
from pathlib import Path

from functions.freeze_events.composition import dependencies
from shared.adapters.pubsub_pull import inbound, pull_batch, settle
from shared.freezer import TransientSinkError, freeze

log = logging.getLogger("freeze_events.worker")


def run(stop: threading.Event) -> None:
    from google.api_core.exceptions import DeadlineExceeded, GoogleAPIError
    from google.cloud.pubsub_v1 import SubscriberClient

    warnings.filterwarnings("ignore", "The return_immediately flag is deprecated")
    deps = dependencies()
    settings = deps.settings
    subscriber = SubscriberClient()
    path = subscriber.subscription_path(settings.project, settings.subscription)
    heartbeat = Path(settings.heartbeat_file) if settings.heartbeat_file else None
    log.info("freezer worker started", extra={"subscription": path})
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
            try:
                freeze([inbound(m) for m in batch], sink=deps.sink, dead_letters=deps.dead_letters)
            except TransientSinkError:
                log.exception("batch not frozen: redelivered later", extra={"size": len(batch)})
                settle(subscriber, path, batch, ack=False)
                time.sleep(1)
                continue
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
