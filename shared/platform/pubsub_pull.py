"""Synchronous Pub/Sub pulls for the pull workers (freezer, decider).

On the local emulator a synchronous ``Pull`` returns up to 100 messages in ~10 ms, where
streaming pull handed a worker about one message at a time (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.contract.messages import InboundMessage

PULL_MAX = 1000
ACK_CHUNK = 1000
IDLE_PULL_TIMEOUT_S = 10.0


def inbound(received: Any) -> InboundMessage:
    message = received.message
    return InboundMessage(
        message_id=message.message_id, data=message.data, attributes=dict(message.attributes)
    )


def pull_batch(subscriber: Any, path: str, max_messages: int, max_wait_s: float) -> list[Any]:
    """Block for the first messages, then top the batch up without waiting."""
    batch: list[Any] = []
    deadline = time.monotonic() + max_wait_s
    while len(batch) < max_messages:
        response = subscriber.pull(
            request={
                "subscription": path,
                "max_messages": min(PULL_MAX, max_messages - len(batch)),
                "return_immediately": bool(batch),
            },
            timeout=IDLE_PULL_TIMEOUT_S + 5,
        )
        if not response.received_messages:
            break
        batch += response.received_messages
        if time.monotonic() >= deadline:
            break
    return batch


def settle(subscriber: Any, path: str, batch: list[Any], ack: bool) -> None:
    ack_ids = [m.ack_id for m in batch]
    for start in range(0, len(ack_ids), ACK_CHUNK):
        chunk = ack_ids[start : start + ACK_CHUNK]
        if ack:
            subscriber.acknowledge(subscription=path, ack_ids=chunk)
        else:  # deadline 0: redelivered at once
            subscriber.modify_ack_deadline(subscription=path, ack_ids=chunk, ack_deadline_seconds=0)


def serve(
    stop: Any,
    *,
    project: str,
    subscription: str,
    heartbeat_file: str | None,
    max_messages: int,
    max_wait_s: float,
    process: Callable[[list[InboundMessage]], object],
    transient: tuple[type[Exception], ...],
    log: logging.Logger,
    loops: int = 1,
) -> None:
    """The pull loop every worker runs: pull a batch, ``process`` it, acknowledge it.

    A batch whose processing raises one of ``transient`` is redelivered at once; a failed
    pull (Pub/Sub restarting, the subscription not created yet) is retried. ``loops`` > 1
    runs that many loops on threads, so that one pulls while another processes; on an
    ordered subscription Pub/Sub withholds a key's next messages while earlier ones are
    outstanding, so no two loops ever hold the same shopper's events.
    """
    import warnings

    from google.api_core.exceptions import DeadlineExceeded, GoogleAPIError
    from google.cloud.pubsub_v1 import SubscriberClient

    warnings.filterwarnings("ignore", "The return_immediately flag is deprecated")
    subscriber = SubscriberClient()
    path = subscriber.subscription_path(project, subscription)
    heartbeat = Path(heartbeat_file) if heartbeat_file else None
    log.info("worker started", extra={"subscription": path, "loops": loops})

    def loop() -> None:
        while not stop.is_set():
            if heartbeat:
                heartbeat.write_text(str(time.time()))
            try:
                batch = pull_batch(subscriber, path, max_messages, max_wait_s)
            except DeadlineExceeded:
                continue  # nothing to pull for a while
            except GoogleAPIError as exc:
                log.warning("pull failed: retrying", extra={"error": str(exc)})
                time.sleep(1)
                continue
            if not batch:
                continue
            try:
                process([inbound(m) for m in batch])
            except transient:
                log.exception("batch not processed: redelivered", extra={"size": len(batch)})
                settle(subscriber, path, batch, ack=False)
                time.sleep(0.5)
                continue
            settle(subscriber, path, batch, ack=True)

    threads = [threading.Thread(target=loop, name=f"pull-{n}") for n in range(loops - 1)]
    try:
        for thread in threads:
            thread.start()
        loop()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        subscriber.close()


def main(run: Callable[[threading.Event], None]) -> None:
    """A worker's entry point: ``run`` until SIGTERM or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(stop)
