"""Pub/Sub adapter of the dead-letter re-drive: pull what was dead-lettered, publish it
back to the stream with its original attributes, acknowledge it."""

from __future__ import annotations

import json
from typing import Any

from google.pubsub_v1.types import PubsubMessage

from shared.freezer.republish import clean_attributes


def ordering_key(data: bytes) -> str:
    """The shopper's ordering key (``{retailer}#{shopper}``, as ingest publishes it) of a
    shopper-event message; none for a message that is not one (it was poison)."""
    try:
        body = json.loads(data)
        return f"{body['retailer_id']}#{body['event']['shopper_id']}"
    except (ValueError, KeyError, TypeError):
        return ""


def redrive(
    subscriber: Any, publisher: Any, subscription: str, topic: str, limit: int
) -> list[str]:
    """Re-drive up to ``limit`` messages of ``subscription`` to ``topic``; the reasons they
    were dead-lettered for, one per message (``-`` when none was recorded)."""
    reasons: list[str] = []
    while len(reasons) < limit:
        response = subscriber.pull(
            subscription=subscription,
            max_messages=min(500, limit - len(reasons)),
            timeout=30,
        )
        received = response.received_messages
        if not received:
            break
        publisher.publish(
            topic=topic,
            messages=[
                PubsubMessage(
                    data=m.message.data,
                    attributes=clean_attributes(dict(m.message.attributes)),
                    ordering_key=ordering_key(m.message.data),
                )
                for m in received
            ],
            timeout=30,
        )
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in received])
        reasons += [m.message.attributes.get("dead_letter_reason", "-") for m in received]
    return reasons
