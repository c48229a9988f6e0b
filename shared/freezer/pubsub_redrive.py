"""Pub/Sub adapter of the dead-letter re-drive: pull what was dead-lettered, publish it
back to the stream with its original attributes, acknowledge it.

Two rules keep a re-drive finite and free of copies:

- **A snapshot.** A run re-drives only what was dead-lettered before it started. Every
  consumer of the stream dead-letters a message that is still poison again, right away,
  onto the subscription the run is reading: without the rule a run fed itself (a dozen
  poison messages became thousands within a minute, each pass multiplied by the number of
  consumers). What was dead-lettered since is left for the next run.
- **One copy per message.** Each consumer of ``shopper-events`` (freezer, decider,
  void_plays) dead-letters its own copy of a message it cannot handle; the run sends one
  back (same data and original attributes) and acknowledges the others.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.freezer.republish import clean_attributes
from shared.platform.pubsub_publish import SyncPublisher

# A pull waits for messages up to its deadline (the emulator answers an empty pull just
# before it): the end of a run costs one such wait.
PULL_TIMEOUT_S = 10.0


def ordering_key(data: bytes) -> str:
    """The shopper's ordering key (``{retailer}#{shopper}``, as ingest publishes it) of a
    shopper-event message; none for a message that is not one (it was poison)."""
    try:
        body = json.loads(data)
        return f"{body['retailer_id']}#{body['event']['shopper_id']}"
    except (ValueError, KeyError, TypeError):
        return ""


def identity(data: bytes, attributes: dict[str, str]) -> str:
    """What makes two dead letters copies of one message: the same data and original
    attributes (a shopper-event message carries its event id and ingestion time)."""
    digest = hashlib.sha256(data)
    digest.update(json.dumps(sorted(attributes.items())).encode())
    return digest.hexdigest()


class StreamPublisher(SyncPublisher):
    """Messages back to the stream, in requests within Pub/Sub's limits."""

    def publish(self, messages: list[tuple[bytes, dict[str, str], str]]) -> None:
        self._publish(messages)


@dataclass
class Redrive:
    """What a run did: the reason of each message re-driven (``-`` when none was
    recorded), the copies acknowledged without re-driving, and whether it stopped at
    messages dead-lettered after it started (left for the next run)."""

    reasons: list[str] = field(default_factory=list)
    copies: int = 0
    reached_newer: bool = False


def redrive(
    subscriber: Any,
    publisher_api: Any,
    subscription: str,
    topic: str,
    limit: int,
    started: datetime | None = None,
) -> Redrive:
    """Re-drive up to ``limit`` messages of ``subscription`` dead-lettered before
    ``started`` (now by default) to ``topic``, one copy of each."""
    started = started or datetime.now(UTC)
    publisher = StreamPublisher(publisher_api, topic, timeout_s=30)
    run = Redrive()
    sent: set[str] = set()
    held: list[str] = []  # ack ids of what was dead-lettered after the start
    while len(run.reasons) < limit:
        response = subscriber.pull(
            subscription=subscription,
            max_messages=min(500, limit - len(run.reasons)),
            timeout=PULL_TIMEOUT_S,
        )
        received = response.received_messages
        if not received:
            break
        older = [m for m in received if m.message.publish_time < started]
        held += [m.ack_id for m in received if m.message.publish_time >= started]
        if not older:
            # Only later messages: the end of the snapshot (a pull may return a part of
            # what is there, so an older one may remain: the next run takes it).
            run.reached_newer = True
            break
        batch: list[tuple[bytes, dict[str, str], str]] = []
        for m in older:
            data, attributes = m.message.data, clean_attributes(dict(m.message.attributes))
            key = identity(data, attributes)
            if key in sent:
                run.copies += 1
                continue
            sent.add(key)
            batch.append((data, attributes, ordering_key(data)))
            run.reasons.append(m.message.attributes.get("dead_letter_reason", "-"))
        if batch:
            publisher.publish(batch)
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in older])
    if held:
        # Held (not acknowledged) while the run lasted, so that no pull returned them
        # again; back on the subscription now, once: the emulator delays a message nacked
        # twice in a row by tens of seconds.
        run.reached_newer = True
        for chunk in range(0, len(held), 1000):
            subscriber.modify_ack_deadline(
                subscription=subscription,
                ack_ids=held[chunk : chunk + 1000],
                ack_deadline_seconds=0,
            )
    return run
