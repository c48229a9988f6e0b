"""Pub/Sub adapters: the shopper-event publisher and the rejected-events topic.

Each ingest request's messages go out in synchronous ``Publish`` RPCs with an explicit
deadline (``shared.platform.pubsub_publish``): the request already is the batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from shared.ingestion.service import EventRecord, RejectedEvent
from shared.platform.pubsub_publish import SyncPublisher


class PubSubEventPublisher(SyncPublisher):
    """Publishes with an ordering key per shopper; returns once Pub/Sub acknowledged all."""

    def publish(self, records: Sequence[EventRecord]) -> None:
        self._publish([(r.message, r.attributes, r.ordering_key) for r in records])


class PubSubRejectedEventPublisher(SyncPublisher):
    def record(self, rejected: Sequence[RejectedEvent]) -> None:
        self._publish(
            [
                (
                    json.dumps(item.model_dump(mode="json")).encode(),
                    {"retailer_id": item.retailer_id},
                    "",
                )
                for item in rejected
            ]
        )


class RejectedEventFanout:
    """Every rejected event goes to the inspectable store AND the topic."""

    def __init__(self, *sinks: Any) -> None:
        self._sinks = sinks

    def record(self, rejected: Sequence[RejectedEvent]) -> None:
        for sink in self._sinks:
            sink.record(rejected)
