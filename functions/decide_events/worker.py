"""decide_events, worker form: a pull loop on an ordered subscription, small batches.

Run: ``python -m functions.decide_events.worker``. Latency first: a batch is whatever is
waiting when the first messages arrive (no waiting to fill it). The batch is acknowledged
once its states are written and its decisions published; on a store failure it is
redelivered (a redelivered event changes nothing). Poison messages are dead-lettered.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import warnings
from pathlib import Path

from functions.decide_events.composition import dependencies
from shared.adapters.pubsub_pull import inbound, pull_batch, settle
from shared.decide_service import decide_batch
from shared.freezer import TransientSinkError
from shared.ingest import StoreUnavailableError

log = logging.getLogger("decide_events.worker")


def run(stop: threading.Event) -> None:
    from google.api_core.exceptions import DeadlineExceeded, GoogleAPIError
    from google.cloud.pubsub_v1 import SubscriberClient

    warnings.filterwarnings("ignore", "The return_immediately flag is deprecated")
    deps = dependencies()
    settings = deps.settings
    subscriber = SubscriberClient()
    path = subscriber.subscription_path(settings.project, settings.subscription)
    heartbeat = Path(settings.heartbeat_file) if settings.heartbeat_file else None
    log.info("decider worker started", extra={"subscription": path})
    try:
        while not stop.is_set():
            if heartbeat:
                heartbeat.write_text(str(time.time()))
            try:
                batch = pull_batch(subscriber, path, settings.batch_max_messages, 0.0)
            except DeadlineExceeded:
                continue  # nothing to pull for a while
            except GoogleAPIError as exc:  # Pub/Sub restarting, subscription not there yet
                log.warning("pull failed: retrying", extra={"error": str(exc)})
                time.sleep(1)
                continue
            if not batch:
                continue
            try:
                outcome = decide_batch([inbound(m) for m in batch], deps.service)
                if outcome.poison:
                    deps.dead_letters.send(outcome.poison)
            except (StoreUnavailableError, TransientSinkError, GoogleAPIError):
                log.exception("batch not decided: redelivered later", extra={"size": len(batch)})
                settle(subscriber, path, batch, ack=False)
                time.sleep(0.5)
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
