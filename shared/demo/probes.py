"""What a tracker sees: how long after the ingest acknowledgement an event's decision is
readable from the experiences endpoint.

``ProbingApi`` wraps the replay's ``EventApi``: after each accepted request it samples
shoppers of the request and hands their last event to the ``Prober``, which asks
``GET /v1/experiences?after=<event_id>&wait_ms=`` (with the retailer's own key) as a
tracker does: the endpoint answers as soon as that event is decided (204 when the wait
ends first: asked again until ``PROBE_TIMEOUT_S``). Used by ``make bench-decide`` and by
``make demo``'s live progress line.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from shared.journey.replay import Answer

WAIT_MS = 5000
RETRY_S = 0.05
PROBE_TIMEOUT_S = 15.0


def percentile(values: list[float], q: float, empty: float = 0.0) -> float:
    """The nearest-rank quantile ``q`` of ``values`` (``empty`` for none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else empty


@dataclass(frozen=True)
class Probe:
    retailer_id: str
    shopper_id: str
    event_id: str
    occurred_at: datetime
    acked_at: float  # time.monotonic()
    level: int


@dataclass
class Results:
    latencies_s: dict[int, list[float]] = field(default_factory=dict)
    timeouts: dict[int, int] = field(default_factory=dict)
    poll_errors: int = 0
    answer_times_s: list[float] = field(default_factory=list)  # the answering GET's own time
    acked: dict[str, tuple[float, int]] = field(default_factory=dict)  # event -> (ack, level)
    published: dict[str, float] = field(default_factory=dict)  # event -> its decision seen

    def published_latencies(self, level: int) -> tuple[list[float], int]:
        """Ack -> decision seen on the topic, for every event of the level; and how many
        events have no decision yet."""
        with self.lock:
            found, missing = [], 0
            for event_id, (acked_at, event_level) in self.acked.items():
                if event_level != level:
                    continue
                seen = self.published.get(event_id)
                if seen is None:
                    missing += 1
                else:
                    found.append(seen - acked_at)
            return found, missing

    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, level: int, latency_s: float | None) -> None:
        with self.lock:
            if latency_s is None:
                self.timeouts[level] = self.timeouts.get(level, 0) + 1
            else:
                self.latencies_s.setdefault(level, []).append(latency_s)


class Prober:
    """Polls the experiences endpoint for sampled events, on a few threads."""

    def __init__(
        self, url: str, api_keys: dict[str, str], results: Results, threads: int = 8
    ) -> None:
        self._url = url.rstrip("/")
        self._headers = {retailer: {"X-Api-Key": key} for retailer, key in api_keys.items()}
        self._results = results
        self._pool = ThreadPoolExecutor(threads)
        self._local = threading.local()
        self._pending: list[Future[None]] = []

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def submit(self, probe: Probe) -> None:
        self._pending.append(self._pool.submit(self._run, probe))

    def _answered(self, probe: Probe) -> bool:
        sent = time.monotonic()
        try:
            response = self._session().get(
                f"{self._url}/v1/experiences",
                params={"after": probe.event_id, "wait_ms": str(WAIT_MS)},
                headers={**self._headers[probe.retailer_id], "X-Shopper-Id": probe.shopper_id},
                timeout=WAIT_MS / 1000 + 5,
            )
        except requests.RequestException:
            self._results.poll_errors += 1  # counted and reported; the probe goes on
            return False
        if response.status_code != 200:
            return False
        body = response.json()
        # The event itself, or a later one of the same shopper (this one was decided first).
        answered = body["event_id"] == probe.event_id or (
            datetime.fromisoformat(body["occurred_at"]) >= probe.occurred_at
        )
        if answered:
            with self._results.lock:
                self._results.answer_times_s.append(time.monotonic() - sent)
        return answered

    def _run(self, probe: Probe) -> None:
        while time.monotonic() - probe.acked_at < PROBE_TIMEOUT_S:
            if self._answered(probe):
                self._results.record(probe.level, time.monotonic() - probe.acked_at)
                return
            time.sleep(RETRY_S)  # after a 204 (the wait ended), an error or a 404
        self._results.record(probe.level, None)

    def drain(self) -> None:
        for future in self._pending:
            future.result()
        self._pending.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class ProbingApi:
    """Wraps an ``EventApi``: after each accepted request, samples events to probe."""

    def __init__(
        self,
        inner: Any,
        prober: Prober,
        results: Results,
        probability: float,
        warmup_s: float,
        seed: int,
    ) -> None:
        self._inner = inner
        self._prober = prober
        self._results = results
        self._probability = probability
        self._warmup_s = warmup_s
        self._random = random.Random(seed)
        self.level = 0
        self.level_started = time.monotonic()

    def post(self, retailer_id: str, events: list[dict[str, Any]]) -> Answer:
        answer: Answer = self._inner.post(retailer_id, events)
        acked_at = time.monotonic()
        if answer.status != 202 or acked_at - self.level_started < self._warmup_s:
            return answer
        refused = {r["index"] for r in answer.body.get("rejected", [])}
        last: dict[str, dict[str, Any]] = {}
        with self._results.lock:
            for index, event in enumerate(events):
                if index not in refused:
                    self._results.acked[event["event_id"]] = (acked_at, self.level)
                    last[event["shopper_id"]] = event  # the shopper's last event of the request
        for shopper, event in last.items():
            if self._random.random() < self._probability:
                self._prober.submit(
                    Probe(
                        retailer_id=retailer_id,
                        shopper_id=shopper,
                        event_id=event["event_id"],
                        occurred_at=datetime.fromisoformat(event["occurred_at"]),
                        acked_at=acked_at,
                        level=self.level,
                    )
                )
        return answer
