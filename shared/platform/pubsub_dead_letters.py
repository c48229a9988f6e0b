"""Dead-letter sink: the topic (to re-drive after a fix) and a BigQuery table (to count)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.contract.messages import PoisonMessage
from shared.platform.errors import StoreUnavailableError
from shared.platform.pubsub_publish import SyncPublisher
from shared.platform.sinks import TransientSinkError


class DeadLetterFanout(SyncPublisher):
    """Publishes in requests within Pub/Sub's per-request limits (``SyncPublisher``): a
    batch of 2,000 poison messages once made every publish fail, and the batch that
    carried them was redelivered for ever, holding up the good messages behind it."""

    def __init__(self, api: Any, topic_path: str, sink: Any, table: str, source: str) -> None:
        super().__init__(api, topic_path)  # api: clients.publisher_api()
        self._sink = sink
        self._table = table
        self._source = source

    def send(self, poison: Sequence[PoisonMessage]) -> None:
        now = datetime.now(UTC)
        try:
            self._publish(
                [
                    (
                        item.data,
                        {
                            **item.attributes,
                            "dead_letter_reason": item.reason[:1000],
                            "original_message_id": item.message_id,
                            "dead_lettered_by": self._source,
                        },
                        "",
                    )
                    for item in poison
                ]
            )
        except StoreUnavailableError as exc:
            raise TransientSinkError(f"dead-letter topic: {exc}") from exc
        self._sink.write(
            self._table,
            [
                {
                    "row_id": f"{self._source}:{item.message_id}",
                    "message_id": item.message_id,
                    "source": self._source,
                    "reason": item.reason,
                    "data_base64": base64.b64encode(item.data).decode(),
                    "dead_lettered_at": now.isoformat(),
                }
                for item in poison
            ],
        )
