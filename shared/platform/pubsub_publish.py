"""Synchronous Pub/Sub publishing: one ``Publish`` RPC per chunk, with an explicit deadline.

Each caller's messages go out in synchronous ``Publish`` RPCs (the GAPIC layer of the
client library) with an explicit deadline, rather than through the library's background
batcher: the request already is the batch, and a publish that timed out is not retried
behind our back after we answered 503 (which would put a second copy on the topic once
the tracker retries).
"""

from __future__ import annotations

from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.api_core.retry import Retry, if_transient_error
from google.pubsub_v1.types import PublishRequest

from shared.platform.batching import chunked
from shared.platform.errors import StoreUnavailableError

TIMEOUT_S = 10.0


# Pub/Sub's documented limits per Publish request: 1,000 messages and 10 MB
# (https://cloud.google.com/pubsub/quotas#resource_limits); 8 MiB leaves room for the
# request's own framing. A batch beyond them is refused whole ("Too many messages to
# publish"), and retrying it can never succeed.
MAX_MESSAGES_PER_RPC = 1000


MAX_BYTES_PER_RPC = 8 * 1024 * 1024


Message = tuple[bytes, dict[str, str], str]  # data, attributes, ordering key


def message_size(message: Message) -> int:
    """What a message weighs in a Publish request: data, attributes, key (plus framing)."""
    data, attributes, ordering_key = message
    return (
        len(data)
        + sum(len(k) + len(v.encode()) for k, v in attributes.items())
        + len(ordering_key)
        + 64
    )


class SyncPublisher:
    def __init__(self, api: Any, topic_path: str, timeout_s: float = TIMEOUT_S) -> None:
        self._api = api  # clients.publisher_api(): the GAPIC client
        self._topic = topic_path
        self._timeout_s = timeout_s
        self._retry = Retry(
            predicate=if_transient_error, initial=0.1, maximum=1.0, timeout=timeout_s
        )

    def _publish(self, messages: list[Message]) -> None:
        try:
            for chunk in chunked(messages, MAX_MESSAGES_PER_RPC, MAX_BYTES_PER_RPC, message_size):
                # A raw protobuf: proto-plus wrappers per message cost more than the RPC.
                request = PublishRequest.pb()(topic=self._topic)
                add = request.messages.add
                for data, attributes, ordering_key in chunk:
                    add(data=data, attributes=attributes, ordering_key=ordering_key)
                self._api.publish(
                    request=PublishRequest.wrap(request),
                    retry=self._retry,
                    timeout=self._timeout_s,
                )
        except GoogleAPIError as exc:
            raise StoreUnavailableError(f"pubsub {self._topic}: {exc}") from exc
