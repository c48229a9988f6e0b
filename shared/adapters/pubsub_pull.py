"""Synchronous Pub/Sub pulls for the pull workers (freezer, decider).

On the local emulator a synchronous ``Pull`` returns up to 100 messages in ~10 ms, where
streaming pull handed a worker about one message at a time (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import time
from typing import Any

from shared.freezer import InboundMessage

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
