"""Synchronous Pub/Sub pulls for the pull workers (freezer, decider).

On the local emulator a synchronous ``Pull`` returns up to 100 messages in ~10 ms, where
streaming pull handed a worker about one message at a time (docs/BENCHMARKS.md).

Flow control: a loop holds one batch at a time, of at most ``max_messages`` messages and
``max_bytes`` bytes; a worker holds at most ``loops`` batches. While a batch is processed,
its messages' ack deadline is extended (``Lease``), so a long batch is not redelivered
to another loop or instance while it is still being worked on (up to ``MAX_LEASE_S``).

Topping a batch up: Pub/Sub discourages ``return_immediately``
(https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions/pull):
in the cloud a top-up is an ordinary pull bounded by the batch's remaining wait (a short
client deadline; nothing there is the end of the batch). The emulator holds a pull open
until a message arrives and answers empty top-ups at once only with
``return_immediately``: on it (``PUBSUB_EMULATOR_HOST`` set) the flag stays, so that a
latency-first worker (``max_wait_s=0``) is not delayed by a top-up.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.contract.messages import InboundMessage

PULL_MAX = 1000
ACK_CHUNK = 1000
IDLE_PULL_TIMEOUT_S = 10.0
MAX_BATCH_BYTES = 10_000_000
MIN_TOP_UP_S = 0.05  # a cloud top-up with less time left than this is not tried
LEASE_EXTENSION_S = 60  # each extension's new ack deadline
MAX_LEASE_S = 600  # a batch held longer is let go: redelivered, logged


def on_emulator() -> bool:
    return bool(os.environ.get("PUBSUB_EMULATOR_HOST"))


def inbound(received: Any) -> InboundMessage:
    message = received.message
    return InboundMessage(
        message_id=message.message_id, data=message.data, attributes=dict(message.attributes)
    )


def received_messages(response: Any) -> Any:
    """A pull response's received messages as raw protocol buffers. The client wraps each
    in proto-plus, whose every field access converts: reading a message's ack id, data and
    attributes through the wrappers cost ~33 µs a message, ~6 µs raw (docs/BENCHMARKS.md).
    A response without ``pb`` (not proto-plus) is read as it is."""
    raw = getattr(type(response), "pb", None)
    return raw(response).received_messages if raw else response.received_messages


def _size(received: Any) -> int:
    return len(received.message.data) + sum(
        len(k) + len(v) for k, v in received.message.attributes.items()
    )


def pull_batch(
    subscriber: Any,
    path: str,
    max_messages: int,
    max_wait_s: float,
    max_bytes: int = MAX_BATCH_BYTES,
    emulator: bool | None = None,
) -> list[Any]:
    """Block for the first messages, then top the batch up until it is full (messages or
    bytes) or ``max_wait_s`` has passed."""
    from google.api_core.exceptions import DeadlineExceeded

    emulator = on_emulator() if emulator is None else emulator
    batch: list[Any] = []
    size = 0
    deadline = time.monotonic() + max_wait_s
    while len(batch) < max_messages and size < max_bytes:
        request = {"subscription": path, "max_messages": min(PULL_MAX, max_messages - len(batch))}
        if not batch:
            response = subscriber.pull(request=request, timeout=IDLE_PULL_TIMEOUT_S + 5)
        elif emulator:
            response = subscriber.pull(
                request={**request, "return_immediately": True}, timeout=IDLE_PULL_TIMEOUT_S + 5
            )
        else:
            left = deadline - time.monotonic()
            if left < MIN_TOP_UP_S:
                break
            try:
                response = subscriber.pull(request=request, timeout=left, retry=None)
            except DeadlineExceeded:
                break  # nothing more within the batch's wait
        received = received_messages(response)
        if not received:
            break
        batch += received
        size += sum(_size(m) for m in received)
        if time.monotonic() >= deadline and emulator:
            break
    return batch


class Lease:
    """Extends the ack deadline of a batch's messages while it is processed: every half
    of the current deadline, to ``LEASE_EXTENSION_S``, for at most ``MAX_LEASE_S``."""

    def __init__(
        self,
        subscriber: Any,
        path: str,
        ack_ids: list[str],
        ack_deadline_s: float,
        log: logging.Logger,
    ) -> None:
        self._subscriber = subscriber
        self._path = path
        self._ack_ids = ack_ids
        self._first_s = max(ack_deadline_s / 2, 0.001)
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self.extensions = 0

    def _run(self) -> None:
        wait = self._first_s
        held = 0.0
        while not self._stop.wait(wait):
            held += wait
            if held > MAX_LEASE_S:
                self._log.warning(
                    "batch held past its maximum lease: it will be redelivered",
                    extra={"size": len(self._ack_ids), "held_s": int(held)},
                )
                return
            try:
                for start in range(0, len(self._ack_ids), ACK_CHUNK):
                    self._subscriber.modify_ack_deadline(
                        subscription=self._path,
                        ack_ids=self._ack_ids[start : start + ACK_CHUNK],
                        ack_deadline_seconds=LEASE_EXTENSION_S,
                    )
                self.extensions += 1
            except Exception as exc:
                self._log.warning("ack deadline not extended", extra={"error": str(exc)})
            wait = LEASE_EXTENSION_S / 2

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def settle(subscriber: Any, path: str, batch: list[Any], ack: bool) -> None:
    ack_ids = [m.ack_id for m in batch]
    for start in range(0, len(ack_ids), ACK_CHUNK):
        chunk = ack_ids[start : start + ACK_CHUNK]
        if ack:
            subscriber.acknowledge(subscription=path, ack_ids=chunk)
        else:  # deadline 0: redelivered at once
            subscriber.modify_ack_deadline(subscription=path, ack_ids=chunk, ack_deadline_seconds=0)


def _settle_or_log(
    subscriber: Any, path: str, batch: list[Any], ack: bool, log: logging.Logger
) -> None:
    """``settle``, surviving Pub/Sub's refusal: an acknowledgement that fails leaves the
    batch to be redelivered after its deadline (every processor is idempotent), so the
    loop goes on instead of the worker dying (a worker paused past its calls' deadlines,
    Pub/Sub restarting)."""
    from google.api_core.exceptions import GoogleAPIError

    try:
        settle(subscriber, path, batch, ack=ack)
    except GoogleAPIError as exc:
        log.warning(
            "batch not settled: Pub/Sub redelivers it",
            extra={"size": len(batch), "ack": ack, "error": str(exc)},
        )


def serve(
    stop: Any,
    *,
    project: str,
    subscription: str,
    heartbeat_file: str | None,
    max_messages: int,
    max_wait_s: float,
    process: Callable[[list[InboundMessage]], object],
    transient: tuple[type[Exception], ...],
    log: logging.Logger,
    loops: int = 1,
    ack_deadline_s: float = 10.0,
    max_bytes: int = MAX_BATCH_BYTES,
) -> None:
    """The pull loop every worker runs: pull a batch, ``process`` it, acknowledge it.

    A batch whose processing raises one of ``transient`` is redelivered at once; a failed
    pull (Pub/Sub restarting, the subscription not created yet) is retried. ``loops`` > 1
    runs that many loops on threads, so that one pulls while another processes; on an
    ordered subscription Pub/Sub withholds a key's next messages while earlier ones are
    outstanding, so no two loops ever hold the same shopper's events. ``ack_deadline_s``
    is the subscription's: a batch still processed after half of it is leased longer.
    """
    import warnings

    from google.api_core.exceptions import DeadlineExceeded, GoogleAPIError
    from google.cloud.pubsub_v1 import SubscriberClient

    warnings.filterwarnings("ignore", "The return_immediately flag is deprecated")
    subscriber = SubscriberClient()
    path = subscriber.subscription_path(project, subscription)
    heartbeat = Path(heartbeat_file) if heartbeat_file else None
    log.info("worker started", extra={"subscription": path, "loops": loops})

    def loop() -> None:
        while not stop.is_set():
            if heartbeat:
                heartbeat.write_text(str(time.time()))
            try:
                batch = pull_batch(subscriber, path, max_messages, max_wait_s, max_bytes)
            except DeadlineExceeded:
                continue  # nothing to pull for a while
            except GoogleAPIError as exc:
                log.warning("pull failed: retrying", extra={"error": str(exc)})
                time.sleep(1)
                continue
            if not batch:
                continue
            try:
                with Lease(subscriber, path, [m.ack_id for m in batch], ack_deadline_s, log):
                    process([inbound(m) for m in batch])
            except transient:
                log.exception("batch not processed: redelivered", extra={"size": len(batch)})
                _settle_or_log(subscriber, path, batch, False, log)
                time.sleep(0.5)
                continue
            _settle_or_log(subscriber, path, batch, True, log)

    threads = [threading.Thread(target=loop, name=f"pull-{n}") for n in range(loops - 1)]
    try:
        for thread in threads:
            thread.start()
        loop()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        subscriber.close()


def main(run: Callable[[threading.Event], None]) -> None:
    """A worker's entry point: ``run`` until SIGTERM or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(stop)
