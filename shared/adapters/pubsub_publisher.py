"""Pub/Sub adapters: the shopper-event publisher and the rejected-events topic."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.api_core.retry import Retry

from shared.ingest import EventRecord, RejectedEvent, StoreUnavailableError

TIMEOUT_S = 10.0


class PubSubEventPublisher:
    """Publishes with an ordering key per shopper; waits for every acknowledgement."""

    def __init__(self, client: Any, topic_path: str, timeout_s: float = TIMEOUT_S) -> None:
        self._client = client
        self._topic = topic_path
        self._timeout_s = timeout_s
        self._retry = Retry(initial=0.1, maximum=1.0, timeout=timeout_s)

    def publish(self, records: Sequence[EventRecord]) -> None:
        futures = [
            (
                record,
                self._client.publish(
                    self._topic,
                    record.message,
                    ordering_key=record.ordering_key,
                    retry=self._retry,
                    timeout=self._timeout_s,
                    **record.attributes,
                ),
            )
            for record in records
        ]
        failures: list[str] = []
        for record, future in futures:
            try:
                future.result(timeout=self._timeout_s * 2)
            except (GoogleAPIError, TimeoutError, RuntimeError, OSError) as exc:
                failures.append(str(exc))
                # A failed publish pauses its ordering key: let later retries through.
                self._client.resume_publish(self._topic, record.ordering_key)
        if failures:
            raise StoreUnavailableError(
                f"pubsub {self._topic}: {len(failures)} publishes failed ({failures[0]})"
            )


class PubSubRejectedEventPublisher:
    def __init__(self, client: Any, topic_path: str, timeout_s: float = TIMEOUT_S) -> None:
        self._client = client
        self._topic = topic_path
        self._timeout_s = timeout_s

    def record(self, rejected: Sequence[RejectedEvent]) -> None:
        futures = [
            self._client.publish(
                self._topic,
                json.dumps(item.model_dump(mode="json")).encode(),
                retailer_id=item.retailer_id,
                timeout=self._timeout_s,
            )
            for item in rejected
        ]
        try:
            for future in futures:
                future.result(timeout=self._timeout_s * 2)
        except (GoogleAPIError, TimeoutError, RuntimeError, OSError) as exc:
            raise StoreUnavailableError(f"pubsub {self._topic}: {exc}") from exc


class RejectedEventFanout:
    """Every rejected event goes to the inspectable store AND the topic."""

    def __init__(self, *sinks: Any) -> None:
        self._sinks = sinks

    def record(self, rejected: Sequence[RejectedEvent]) -> None:
        for sink in self._sinks:
            sink.record(rejected)
