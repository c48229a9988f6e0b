"""Dead-letter sink: the topic (to re-drive after a fix) and a BigQuery table (to count)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.pubsub_v1.types import PubsubMessage

from shared.contract.messages import PoisonMessage
from shared.platform.sinks import TransientSinkError

TIMEOUT_S = 10.0


class DeadLetterFanout:
    def __init__(self, api: Any, topic_path: str, sink: Any, table: str, source: str) -> None:
        self._api = api  # clients.publisher_api()
        self._topic = topic_path
        self._sink = sink
        self._table = table
        self._source = source

    def send(self, poison: Sequence[PoisonMessage]) -> None:
        now = datetime.now(UTC)
        try:
            self._api.publish(
                topic=self._topic,
                messages=[
                    PubsubMessage(
                        data=item.data,
                        attributes={
                            **item.attributes,
                            "dead_letter_reason": item.reason[:1000],
                            "original_message_id": item.message_id,
                            "dead_lettered_by": self._source,
                        },
                    )
                    for item in poison
                ],
                timeout=TIMEOUT_S,
            )
        except GoogleAPIError as exc:
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
