"""Operations on the stream: republish stored events, re-drive dead letters.

Both are safe to repeat: every consumer is idempotent on ``event_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol

from shared.ingestion.service import EventPublisher, EventRecord

log = logging.getLogger(__name__)


class EventArchive(Protocol):
    def scan(self, retailer_id: str, since: datetime, until: datetime) -> Iterator[EventRecord]: ...


def republish(
    archive: EventArchive,
    publisher: EventPublisher,
    retailer_id: str,
    since: datetime,
    until: datetime,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    skip: Callable[[str, str], bool] | None = None,
) -> int:
    """Republish a retailer's stored events that occurred in ``[since, until)``, but
    those of the shoppers ``skip(retailer_id, shopper_id)`` names (suppressed)."""
    batch: list[EventRecord] = []
    sent = 0
    for record in archive.scan(retailer_id, since, until):
        # The ordering key is "{retailer}#{shopper}" (shared.ingestion.service.make_record).
        if skip is not None and skip(retailer_id, record.ordering_key.split("#", 1)[1]):
            continue
        batch.append(record)
        if len(batch) >= batch_size:
            publisher.publish(batch)
            sent += len(batch)
            batch = []
            if progress:
                progress(sent)
    if batch:
        publisher.publish(batch)
        sent += len(batch)
        if progress:
            progress(sent)
    log.info("events republished", extra={"retailer_id": retailer_id, "events": sent})
    return sent


DEAD_LETTER_ATTRIBUTES = ("dead_letter_reason", "original_message_id", "dead_lettered_by")
# What Pub/Sub adds to a message its dead-letter policy forwards (after too many failed
# deliveries): CloudPubSubDeadLetterSourceDeliveryCount, ...SourceSubscription, etc.
PUBSUB_DEAD_LETTER_PREFIX = "CloudPubSubDeadLetter"


def clean_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """The original message's attributes, without what dead-lettering added (ours, or
    Pub/Sub's dead-letter policy's)."""
    return {
        k: v
        for k, v in attributes.items()
        if k not in DEAD_LETTER_ATTRIBUTES and not k.startswith(PUBSUB_DEAD_LETTER_PREFIX)
    }
