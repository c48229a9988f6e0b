"""freeze_events, worker form: streaming pull, batches of up to 2,000 messages.

Run: ``python -m functions.freeze_events.worker``. Each batch is frozen with one MERGE
per read model; it is acknowledged once written, nacked (redelivered) on a transient
error. Poison messages are dead-lettered inside ``freeze`` and acknowledged.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

from functions.freeze_events.composition import dependencies
from shared.freezer import InboundMessage, TransientSinkError, freeze

log = logging.getLogger("freeze_events.worker")


def _inbound(message: Any) -> InboundMessage:
    return InboundMessage(
        message_id=message.message_id, data=message.data, attributes=dict(message.attributes)
    )


def run(stop: threading.Event) -> None:
    from google.cloud.pubsub_v1 import SubscriberClient
    from google.cloud.pubsub_v1.types import FlowControl

    deps = dependencies()
    settings = deps.settings
    inbox: queue.Queue[Any] = queue.Queue()
    subscriber = SubscriberClient()
    path = subscriber.subscription_path(settings.project, settings.subscription)
    future = subscriber.subscribe(
        path,
        callback=inbox.put,
        flow_control=FlowControl(max_messages=settings.batch_max_messages * 2),
    )
    heartbeat = Path(settings.heartbeat_file) if settings.heartbeat_file else None
    log.info("freezer worker started", extra={"subscription": path})
    try:
        while not stop.is_set():
            if heartbeat:
                heartbeat.write_text(str(time.time()))
            batch = _collect(inbox, settings.batch_max_messages, settings.batch_max_wait_s)
            if not batch:
                continue
            try:
                freeze([_inbound(m) for m in batch], sink=deps.sink, dead_letters=deps.dead_letters)
            except TransientSinkError:
                log.exception("batch not frozen: redelivered later", extra={"size": len(batch)})
                for message in batch:
                    message.nack()
                time.sleep(1)
                continue
            for message in batch:
                message.ack()
    finally:
        future.cancel()
        subscriber.close()


def _collect(
    inbox: queue.Queue[Any], max_messages: int, max_wait_s: float, idle_s: float = 0.05
) -> list[Any]:
    """Up to ``max_messages``, for at most ``max_wait_s``, ending early when the inbox has
    been quiet for ``idle_s`` (a trickle is frozen at once, a flood in big batches)."""
    try:
        batch = [inbox.get(timeout=1.0)]
    except queue.Empty:
        return []
    deadline = time.monotonic() + max_wait_s
    while len(batch) < max_messages:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            batch.append(inbox.get(timeout=min(remaining, idle_s)))
        except queue.Empty:
            break
    return batch


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(stop)


if __name__ == "__main__":
    main()
