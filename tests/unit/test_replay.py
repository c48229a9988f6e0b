"""Replaying sessions as trackers: batching per retailer, retries, pacing, counting."""

from __future__ import annotations

import threading
from typing import Any

from shared.journey.replay import Answer, Batch, Pacer, batches, replay
from shared.journey.tracker_simulator import Session


def session(retailer: str, basket: int, events: int) -> Session:
    return Session(retailer, basket, [{"event_id": f"{basket}-{n}"} for n in range(events)])


def test_batches_hold_one_retailer_each_and_keep_the_send_order() -> None:
    sent = list(batches([session("a", 1, 3), session("b", 2, 2), session("a", 3, 3)], size=4))
    assert [(b.retailer_id, [e["event_id"] for e in b.events]) for b in sent] == [
        ("a", ["1-0", "1-1", "1-2", "3-0"]),
        ("a", ["3-1", "3-2"]),
        ("b", ["2-0", "2-1"]),
    ]
    assert sum(b.sessions for b in sent) == 3


class FlakyApi:
    """503 (Retry-After 1) on the first try of every batch, a 400 for retailer "bad"."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def post(self, retailer_id: str, events: list[dict[str, Any]]) -> Answer:
        key = f"{retailer_id}:{events[0]['event_id']}"
        with self.lock:
            first = key not in self.calls
            self.calls.append(key)
        if retailer_id == "bad":
            return Answer(400, {"error": {"code": "invalid_request"}}, None, 0.01)
        if first:
            return Answer(503, {"error": {"code": "unavailable"}}, 1.0, 0.01)
        body = {"accepted": len(events) - 1, "duplicate_count": 1, "rejected_count": 0}
        return Answer(202, body, None, 0.02)


def test_retries_after_retry_after_and_counts_every_answer() -> None:
    api = FlakyApi()
    slept: list[float] = []
    to_send = [Batch("a", [{"event_id": f"a{n}"}] * 5, 1) for n in range(4)]
    to_send.append(Batch("bad", [{"event_id": "x"}] * 3, 1))
    summary = replay(to_send, api, concurrency=2, sleep=slept.append)
    assert summary.sent == 23
    assert (summary.accepted, summary.duplicates) == (16, 4)
    assert summary.retries == 4 and slept.count(1.0) == 4
    assert (summary.failed_batches, summary.failed_events, summary.failures) == (1, 3, {400: 1})
    assert summary.sessions == 5
    assert summary.latency_ms(0.5) > 0


def test_the_pacer_spaces_sends_to_the_rate() -> None:
    clock = [100.0]
    pacer = Pacer(1000, clock=lambda: clock[0])
    assert [pacer.delay(500) for _ in range(3)] == [0.0, 0.5, 1.0]
    clock[0] = 102.0
    assert pacer.delay(500) == 0.0
    assert Pacer(None).delay(10_000) == 0.0
