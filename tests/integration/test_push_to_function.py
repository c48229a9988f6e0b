"""A Pub/Sub push subscription reaches a functions-framework CloudEvent function as in GCP."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from emulators.bootstrap import push_endpoint
from emulators.config import StackSettings
from tests.integration.serving import serve_function

pytestmark = pytest.mark.integration


def _records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _wait_for(path: Path, count: int, timeout_s: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = _records(path)
        if len(records) >= count:
            return records
        time.sleep(0.2)
    return _records(path)


def test_push_delivers_a_cloudevent_and_failures_are_redelivered(
    stack: dict[str, str], stack_settings: StackSettings, unique: str, tmp_path: Path
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    sink = tmp_path / "events.jsonl"
    publisher = PublisherClient()
    subscriber = SubscriberClient()
    topic_id = f"push-{unique}"
    topic = publisher.topic_path(project, topic_id)
    subscription = subscriber.subscription_path(project, f"push-{unique}")
    publisher.create_topic(name=topic, timeout=10)
    with serve_function(
        stack_settings,
        "record_events",
        "record_event",
        "cloudevent",
        {"RECORD_EVENTS_FILE": str(sink)},
    ) as url:
        port = int(url.rsplit(":", 1)[1])
        subscriber.create_subscription(
            request={
                "name": subscription,
                "topic": topic,
                "push_config": {"push_endpoint": push_endpoint(stack_settings, port, topic_id)},
                "ack_deadline_seconds": 10,
            },
            timeout=10,
        )
        try:
            message_id = publisher.publish(
                topic, b'{"hello": "cartwise"}', retailer_id="r1"
            ).result(timeout=10)
            records = _wait_for(sink, 1)
            assert len(records) >= 1
            event = records[0]
            attributes = event["attributes"]
            assert isinstance(attributes, dict)
            assert attributes["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
            assert (
                attributes["source"]
                == f"//pubsub.googleapis.com/projects/{project}/topics/{topic_id}"
            )
            assert attributes["id"] == message_id
            data = event["data"]
            assert isinstance(data, dict)
            message = data["message"]
            assert base64.b64decode(message["data"]) == b'{"hello": "cartwise"}'
            assert message["attributes"] == {"retailer_id": "r1"}
            assert message["messageId"] == message_id
            assert message["publishTime"]
            # functions-framework's push conversion drops "subscription" (GCP sets it):
            # nothing in cartwise reads it.

            # A function that raises answers 500: the emulator redelivers the message.
            failing_id = publisher.publish(topic, b"{}", fail="yes").result(timeout=10)
            records = _wait_for(sink, 3)
            attempts = [r for r in records if r["attributes"]["id"] == failing_id]  # type: ignore[index]
            assert len(attempts) >= 2
        finally:
            subscriber.delete_subscription(subscription=subscription, timeout=10)
            publisher.delete_topic(topic=topic, timeout=10)
