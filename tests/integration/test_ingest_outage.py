"""Pub/Sub stops mid-run: the API answers 503 and accepts nothing; the retry succeeds once.

The function under test gets its own Pub/Sub emulator (the stack's other stores are
shared), so stopping it does not disturb other tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from emulators.config import StackSettings
from shared.system.resources import REJECTED_EVENTS_TOPIC, SHOPPER_EVENTS_TOPIC
from tests.factories import event
from tests.integration.private_emulators import PrivatePubSubEmulator, running
from tests.integration.serving import PRODUCT_FUNCTIONS, serve_function

pytestmark = pytest.mark.integration


class PrivatePubSub(PrivatePubSubEmulator):
    def create(self) -> None:
        for topic in (SHOPPER_EVENTS_TOPIC, REJECTED_EVENTS_TOPIC):
            self.publisher.create_topic(
                name=self.publisher.topic_path(self.project, topic), timeout=30
            )
        self.tap = self.subscriber.subscription_path(self.project, "tap")
        self.subscriber.create_subscription(
            name=self.tap,
            topic=self.publisher.topic_path(self.project, SHOPPER_EVENTS_TOPIC),
            timeout=30,
        )

    def drain(self) -> list[str]:
        ids: list[str] = []
        while True:
            response = self.subscriber.pull(
                request={
                    "subscription": self.tap,
                    "max_messages": 1000,
                    "return_immediately": True,
                },
                timeout=10,
            )
            if not response.received_messages:
                return ids
            ids += [m.message.attributes["event_id"] for m in response.received_messages]
            self.subscriber.acknowledge(
                subscription=self.tap, ack_ids=[m.ack_id for m in response.received_messages]
            )


@pytest.fixture
def private_pubsub(stack: dict[str, str], stack_settings: StackSettings) -> Iterator[PrivatePubSub]:
    with running(PrivatePubSub(stack_settings, stack["GOOGLE_CLOUD_PROJECT"])) as pubsub:
        yield pubsub


def test_pubsub_down_gives_503_then_the_retry_succeeds_without_duplicates(
    stack: dict[str, str],
    stack_settings: StackSettings,
    private_pubsub: PrivatePubSub,
    unique: str,
) -> None:
    env = {"PUBSUB_EMULATOR_HOST": private_pubsub.host, "INGEST_PUBLISH_TIMEOUT_S": "2"}
    with serve_function(
        stack_settings, "ingest_events", "ingest_events", "http", env, PRODUCT_FUNCTIONS
    ) as url:

        def send(events: list[dict[str, object]]) -> requests.Response:
            return requests.post(
                f"{url}/v1/events",
                data=json.dumps({"events": events}),
                headers={"X-Api-Key": stack["DEMO_API_KEY"], "Content-Type": "application/json"},
                timeout=60,
            )

        before = [event("page_viewed", f"s-{unique}") for _ in range(20)]
        assert send(before).json()["accepted"] == 20

        private_pubsub.stop()
        during = [event("product_added_to_basket", f"s-{unique}") for _ in range(20)]
        started = time.monotonic()
        refused = send(during)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "unavailable"
        assert int(refused.headers["Retry-After"]) >= 1
        # No speed threshold here (a benchmark's business): ``send``'s 60 s timeout only
        # fails a publisher that hangs (one that waited out each future in turn took 80 s).
        print(f"503 answered in {time.monotonic() - started:.1f}s")

        # The emulator comes back (empty, like a new topic): the tracker retries as is,
        # after Retry-After, until it is accepted (the function's gRPC channel may still
        # be waiting out its reconnection backoff at the first retry).
        private_pubsub.start()
        deadline = time.monotonic() + 60
        retried = send(during)
        while retried.status_code == 503 and time.monotonic() < deadline:
            time.sleep(int(retried.headers["Retry-After"]))
            retried = send(during)
        assert retried.status_code == 202, retried.text
        assert retried.json()["accepted"] == 20
        again = send(during)
        assert again.json()["accepted"] == 0
        assert again.json()["duplicate_count"] == 20

        published = private_pubsub.drain()
        assert sorted(published) == sorted(e["event_id"] for e in during)
