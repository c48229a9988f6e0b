"""The pull loop's flow control, top-ups and lease extension, against a fake subscriber
(the pull path itself runs on the emulator in the workers' integration tests)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.api_core.exceptions import DeadlineExceeded

from shared.platform import pubsub_pull
from shared.platform.pubsub_pull import Lease, pull_batch

log = logging.getLogger("test")


@dataclass
class Message:
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = "m"


@dataclass
class Received:
    message: Message
    ack_id: str


@dataclass
class Response:
    received_messages: list[Received]


class FakeSubscriber:
    """Serves ``waiting`` messages; an empty pull without return_immediately blocks
    until its deadline (as Pub/Sub's long poll does)."""

    def __init__(self, waiting: int, size: int = 10) -> None:
        self.waiting = [Received(Message(b"x" * size), f"a{n}") for n in range(waiting)]
        self.pulls: list[dict[str, Any]] = []
        self.extended: list[tuple[list[str], int]] = []
        self.extension = threading.Event()

    def pull(self, request: dict[str, Any], timeout: float, retry: object = "default") -> Response:
        self.pulls.append({**request, "timeout": timeout, "retry": retry})
        if not self.waiting:
            if request.get("return_immediately"):
                return Response([])
            raise DeadlineExceeded("no message within the deadline")
        count = min(request["max_messages"], 3)  # Pub/Sub may return fewer than asked
        taken, self.waiting = self.waiting[:count], self.waiting[count:]
        return Response(taken)

    def modify_ack_deadline(
        self, subscription: str, ack_ids: list[str], ack_deadline_seconds: int
    ) -> None:
        self.extended.append((ack_ids, ack_deadline_seconds))
        self.extension.set()


def test_in_the_cloud_top_ups_are_plain_pulls_bounded_by_the_batch_wait() -> None:
    subscriber = FakeSubscriber(waiting=5)
    batch = pull_batch(subscriber, "s", max_messages=100, max_wait_s=30.0, emulator=False)
    assert len(batch) == 5
    assert not any("return_immediately" in p for p in subscriber.pulls)
    top_ups = subscriber.pulls[1:]
    assert top_ups and all(p["retry"] is None and p["timeout"] <= 30.0 for p in top_ups)


def test_a_latency_first_cloud_worker_does_not_wait_to_top_up() -> None:
    subscriber = FakeSubscriber(waiting=5)
    batch = pull_batch(subscriber, "s", max_messages=100, max_wait_s=0.0, emulator=False)
    assert len(batch) == 3 and len(subscriber.pulls) == 1


def test_on_the_emulator_top_ups_keep_return_immediately() -> None:
    subscriber = FakeSubscriber(waiting=5)
    batch = pull_batch(subscriber, "s", max_messages=100, max_wait_s=30.0, emulator=True)
    assert len(batch) == 5
    assert "return_immediately" not in subscriber.pulls[0]  # the first pull blocks
    assert all(p["return_immediately"] for p in subscriber.pulls[1:])


def test_a_batch_stops_at_its_byte_budget() -> None:
    subscriber = FakeSubscriber(waiting=50, size=1000)
    batch = pull_batch(subscriber, "s", 100, 30.0, max_bytes=5000, emulator=True)
    assert len(batch) == 6  # two pulls of 3: 6,000 bytes >= 5,000
    assert len(subscriber.waiting) == 44


def test_a_long_batch_has_its_ack_deadline_extended_until_it_is_done() -> None:
    subscriber = FakeSubscriber(waiting=0)
    ids = [f"a{n}" for n in range(2500)]
    with Lease(subscriber, "s", ids, ack_deadline_s=0.01, log=log) as lease:
        assert subscriber.extension.wait(30)  # the batch is still being processed
    after = list(subscriber.extended)
    assert lease.extensions >= 1
    assert [len(chunk) for chunk, _ in after[:3]] == [1000, 1000, 500]
    assert {seconds for _, seconds in after} == {pubsub_pull.LEASE_EXTENSION_S}
    assert subscriber.extended == after  # nothing extended once the batch is done


def test_a_quick_batch_is_never_extended() -> None:
    subscriber = FakeSubscriber(waiting=0)
    with Lease(subscriber, "s", ["a"], ack_deadline_s=600, log=log) as lease:
        pass
    assert lease.extensions == 0 and subscriber.extended == []


@pytest.mark.parametrize("value", ["", "localhost:8085"])
def test_the_emulator_is_recognised_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", value)
    assert pubsub_pull.on_emulator() is bool(value)


class RefusingSubscriber:
    """Pub/Sub answering every acknowledgement with a deadline exceeded (the worker was
    paused past its calls' deadlines, or Pub/Sub is restarting)."""

    def __init__(self) -> None:
        self.calls = 0

    def acknowledge(self, subscription: str, ack_ids: list[str]) -> None:
        self.calls += 1
        raise DeadlineExceeded("acknowledge: deadline exceeded")

    def modify_ack_deadline(
        self, subscription: str, ack_ids: list[str], ack_deadline_seconds: int
    ) -> None:
        self.calls += 1
        raise DeadlineExceeded("modify_ack_deadline: deadline exceeded")


@pytest.mark.parametrize("ack", [True, False])
def test_a_refused_acknowledgement_leaves_the_batch_to_redelivery_and_the_loop_alive(
    ack: bool, caplog: pytest.LogCaptureFixture
) -> None:
    subscriber = RefusingSubscriber()
    batch = [Received(Message(b"x"), f"a{n}") for n in range(3)]
    with caplog.at_level(logging.WARNING, logger="test"):
        pubsub_pull._settle_or_log(subscriber, "subs/s", batch, ack, log)
    assert subscriber.calls == 1
    assert [r.getMessage() for r in caplog.records] == ["batch not settled: Pub/Sub redelivers it"]
    assert caplog.records[0].__dict__["ack"] is ack


class ProtoSubscriber:
    """Answers pulls with the client's own proto-plus ``PullResponse``s."""

    def __init__(self, waiting: int) -> None:
        from google.pubsub_v1.types import PullResponse

        self.responses = [
            PullResponse(
                received_messages=[
                    {
                        "ack_id": f"ack-{n}",
                        "message": {
                            "data": f"event {n}".encode(),
                            "message_id": f"m{n}",
                            "attributes": {"event_id": f"e{n}"},
                        },
                    }
                    for n in range(first, min(waiting, first + 3))
                ]
            )
            for first in range(0, waiting, 3)
        ]

    def pull(self, request: dict[str, Any], timeout: float, retry: object = "default") -> Any:
        from google.pubsub_v1.types import PullResponse

        return self.responses.pop(0) if self.responses else PullResponse()


def test_a_pull_is_read_as_raw_protocol_buffers_with_every_field_kept() -> None:
    from google.protobuf.message import Message as RawMessage

    batch = pull_batch(ProtoSubscriber(waiting=5), "s", 100, 30.0, emulator=True)
    assert all(isinstance(m, RawMessage) for m in batch)  # not proto-plus wrappers
    messages = [pubsub_pull.inbound(m) for m in batch]
    assert [m.ack_id for m in batch] == [f"ack-{n}" for n in range(5)]
    assert [(m.message_id, m.data, m.attributes) for m in messages] == [
        (f"m{n}", f"event {n}".encode(), {"event_id": f"e{n}"}) for n in range(5)
    ]
