"""Replay simulated tracker sessions through the Shopper Event API, as trackers would.

Events go out in batches of one retailer (its API key), ``concurrency`` requests in
flight, optionally paced to a rate. A 429 or 503 is retried after its ``Retry-After``
(the API guarantees the retry is safe); any other refusal is counted, never hidden.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.journey.tracker_simulator import Session

log = logging.getLogger(__name__)

RETRYABLE = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    retry_after_s: float | None
    latency_s: float


class EventApi(Protocol):
    def post(self, retailer_id: str, events: list[dict[str, Any]]) -> Answer: ...


@dataclass(frozen=True, slots=True)
class Batch:
    retailer_id: str
    events: list[dict[str, Any]]
    sessions: int  # sessions completed by this batch (for progress)


@dataclass
class ReplaySummary:
    sessions: int = 0
    batches: int = 0
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    failed_batches: int = 0
    failed_events: int = 0
    failures: dict[int, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def latency_ms(self, quantile: float) -> float:
        if not self.latencies_s:
            return 0.0
        if len(self.latencies_s) == 1:
            return self.latencies_s[0] * 1000
        cuts = statistics.quantiles(self.latencies_s, n=100, method="inclusive")
        return cuts[min(98, max(0, round(quantile * 100) - 1))] * 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "batches": self.batches,
            "sent": self.sent,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "retries": self.retries,
            "failed_batches": self.failed_batches,
            "failed_events": self.failed_events,
            "failures_by_status": {str(k): v for k, v in sorted(self.failures.items())},
            "seconds": round(self.seconds, 2),
            "events_per_s": round(self.events_per_s, 1),
            "latency_ms": {
                "p50": round(self.latency_ms(0.5), 1),
                "p95": round(self.latency_ms(0.95), 1),
                "p99": round(self.latency_ms(0.99), 1),
            },
        }


def batches(sessions: Iterable[Session], size: int = 500) -> Iterator[Batch]:
    """Each retailer's events in send order, ``size`` at most per batch."""
    buffers: dict[str, list[dict[str, Any]]] = {}
    done: dict[str, int] = {}
    for session in sessions:
        buffer = buffers.setdefault(session.retailer_id, [])
        done[session.retailer_id] = done.get(session.retailer_id, 0) + 1
        for event in session.events:
            buffer.append(event)
            if len(buffer) == size:
                yield Batch(session.retailer_id, buffer, done.pop(session.retailer_id, 0))
                buffer = buffers[session.retailer_id] = []
    for retailer_id, buffer in buffers.items():
        if buffer or done.get(retailer_id):
            yield Batch(retailer_id, buffer, done.get(retailer_id, 0))


class Pacer:
    """Spaces sends so that ``rate`` events/s are not exceeded (``None``: as fast as possible)."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def delay(self, events: int) -> float:
        if not self._rate:
            return 0.0
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + events / self._rate
            return start - now


def replay(
    to_send: Iterable[Batch],
    api: EventApi,
    *,
    concurrency: int = 8,
    rate: float | None = None,
    max_attempts: int = 20,
    progress: Callable[[ReplaySummary], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplaySummary:
    """Send every batch; return what the API answered, counted."""
    summary = ReplaySummary()
    lock = threading.Lock()
    pacer = Pacer(rate)
    started = time.monotonic()

    def send(batch: Batch) -> None:
        if not batch.events:
            with lock:
                summary.sessions += batch.sessions
            return
        sleep(pacer.delay(len(batch.events)))
        for attempt in range(1, max_attempts + 1):
            answer = api.post(batch.retailer_id, batch.events)
            if answer.status in RETRYABLE and attempt < max_attempts:
                with lock:
                    summary.retries += 1
                sleep(answer.retry_after_s or min(30.0, 0.5 * 2**attempt))
                continue
            break
        with lock:
            summary.sessions += batch.sessions
            summary.batches += 1
            summary.sent += len(batch.events)
            summary.latencies_s.append(answer.latency_s)
            if answer.status == 202:
                summary.accepted += int(answer.body.get("accepted", 0))
                summary.duplicates += int(answer.body.get("duplicate_count", 0))
                summary.rejected += int(answer.body.get("rejected_count", 0))
            else:
                summary.failed_batches += 1
                summary.failed_events += len(batch.events)
                summary.failures[answer.status] = summary.failures.get(answer.status, 0) + 1
                log.warning(
                    "batch refused",
                    extra={"status": answer.status, "body": str(answer.body)[:500]},
                )
            summary.seconds = time.monotonic() - started
        if progress:
            progress(summary)

    with ThreadPoolExecutor(concurrency) as pool:
        in_flight: set[Future[None]] = set()
        for batch in to_send:
            if len(in_flight) >= 2 * concurrency:
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()
            in_flight.add(pool.submit(send, batch))
        for future in in_flight:
            future.result()
    summary.seconds = time.monotonic() - started
    return summary
