"""Pub/Sub adapter of ``PlayPublisher``: each play's state on the ``plays`` topic."""

from __future__ import annotations

import json
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.pubsub_v1.types import PubsubMessage

from shared.rewards.game import Play, play_row

TIMEOUT_S = 10.0


class PublishFailedError(RuntimeError):
    """The play's state could not be published now: answer 503, the retry re-publishes."""


class PubSubPlayPublisher:
    def __init__(self, api: Any, topic_path: str) -> None:
        self._api = api  # clients.publisher_api()
        self._topic = topic_path

    def publish(self, plays: list[Play]) -> None:
        try:
            self._api.publish(
                topic=self._topic,
                messages=[
                    PubsubMessage(
                        data=json.dumps(play_row(p)).encode(),
                        attributes={"play_id": p.play_id, "retailer_id": p.retailer_id},
                    )
                    for p in plays
                ],
                timeout=TIMEOUT_S,
            )
        except GoogleAPIError as exc:
            raise PublishFailedError(f"plays topic: {exc}") from exc
