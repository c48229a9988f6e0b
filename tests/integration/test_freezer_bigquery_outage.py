"""BigQuery fails under the freezer: the batch is redelivered, quarantined after the
declared number of attempts, and a message re-driven (or redelivered after BigQuery is
back) is frozen once.

The freezer worker under test runs as the stack runs it (``python -m
functions.freeze_events.worker``) on a Pub/Sub emulator of its own, with the freezer's
subscription as the system declares it (ack deadline, dead-letter topic, attempts); it
reaches the stack's bqemulator through a switch the test opens and closes. Down, the
switch answers every request ``503 Service Unavailable``, as BigQuery's front end does
when it is unavailable.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.pubsub_v1.types import PubsubMessage

from emulators import processes
from emulators.config import ROOT, StackSettings
from shared.contract.events import validate_event
from shared.freezer.pubsub_redrive import redrive
from shared.ingestion.service import make_record, message_head
from shared.platform import clients
from shared.system.resources import (
    FREEZER_SUBSCRIPTION,
    SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
    SHOPPER_EVENTS_TOPIC,
    SYSTEM,
)
from tests.factories import event
from tests.integration.private_emulators import PrivatePubSubEmulator, running
from tests.integration.test_freezer import query

pytestmark = pytest.mark.integration

DECLARED = next(s for s in SYSTEM.subscriptions if s.name == FREEZER_SUBSCRIPTION)
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: 80\r\n\r\n"
    + json.dumps({"error": {"code": 503, "message": "unavailable", "status": "UNAVAILABLE"}})
    .encode()
    .ljust(80)
)


class Switch:
    """A TCP relay to the stack's bqemulator that the test turns off and on. Off, it
    drops the connections it relays and answers each new request 503."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.up = threading.Event()
        self.refused = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = socket.create_server((host, 0))
        self.host = f"{host}:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        self.up.clear()
        with self._lock:
            for connection in self._open:
                connection.close()
            self._open.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if not self.up.is_set():
            with client:
                client.recv(65536)
                client.sendall(UNAVAILABLE)
                self.refused += 1
            return
        upstream = socket.create_connection(self.target)
        with self._lock:
            self._open |= {client, upstream}
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def close(self) -> None:
        self.down()
        self._server.close()


class FreezerPubSub(PrivatePubSubEmulator):
    """The stream, its dead-letter topic and the freezer's subscription as declared; on the
    dead-letter topic a tap (the test's) and an inspection subscription (the re-drive's,
    as the stack's ``shopper-events-dead-letter-inspect``)."""

    def create(self) -> None:
        topic = self.publisher.topic_path(self.project, SHOPPER_EVENTS_TOPIC)
        dead = self.publisher.topic_path(self.project, SHOPPER_EVENTS_DEAD_LETTER_TOPIC)
        for name in (topic, dead):
            self.publisher.create_topic(name=name, timeout=30)
        self.dead_letters = self.subscriber.subscription_path(self.project, "tap")
        self.inspection = self.subscriber.subscription_path(self.project, "inspect")
        for subscription in (self.dead_letters, self.inspection):
            self.subscriber.create_subscription(name=subscription, topic=dead, timeout=30)
        self.subscriber.create_subscription(
            request={
                "name": self.subscriber.subscription_path(self.project, DECLARED.name),
                "topic": topic,
                "ack_deadline_seconds": DECLARED.ack_deadline_s,
                "dead_letter_policy": {
                    "dead_letter_topic": dead,
                    "max_delivery_attempts": DECLARED.max_delivery_attempts,
                },
            },
            timeout=30,
        )

    def publish_event(self, retailer: str, shopper_event: dict[str, Any]) -> None:
        parsed = validate_event(shopper_event)
        assert not isinstance(parsed, list), parsed
        record = make_record(retailer, parsed, message_head(retailer, datetime.now(UTC)))
        self.publisher.publish(
            self.publisher.topic_path(self.project, SHOPPER_EVENTS_TOPIC),
            record.message,
            ordering_key="",
            **record.attributes,
        ).result(timeout=30)

    def dead_lettered(self, wait_s: float) -> list[PubsubMessage]:
        """What reached the dead-letter topic within ``wait_s`` (acknowledged)."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            response = self.subscriber.pull(
                subscription=self.dead_letters, max_messages=100, timeout=10
            )
            if response.received_messages:
                self.subscriber.acknowledge(
                    subscription=self.dead_letters,
                    ack_ids=[m.ack_id for m in response.received_messages],
                )
                return [m.message for m in response.received_messages]
        return []


@pytest.fixture
def freezer_pubsub(stack: dict[str, str], stack_settings: StackSettings) -> Iterator[FreezerPubSub]:
    with running(FreezerPubSub(stack_settings, stack["GOOGLE_CLOUD_PROJECT"])) as pubsub:
        yield pubsub


@pytest.fixture
def switch(stack: dict[str, str], stack_settings: StackSettings) -> Iterator[Switch]:
    host, port = stack["BIGQUERY_EMULATOR_HOST"].rsplit(":", 1)
    relay = Switch(stack_settings.host, (host, int(port)))
    try:
        yield relay
    finally:
        relay.close()


class Freezer:
    """The freezer worker on the private Pub/Sub, through the switch; its log tells the
    batches it could not write (one line each)."""

    def __init__(
        self, stack: dict[str, str], settings: StackSettings, pubsub: FreezerPubSub, via: Switch
    ) -> None:
        self.log = settings.logs_dir / f"test-freezer-bigquery-{pubsub.port}.log"
        self.pid = processes.start(
            [str(settings.venv_bin / "python"), "-m", "functions.freeze_events.worker"],
            log_file=self.log,
            env={
                **os.environ,
                **stack,
                "PUBSUB_EMULATOR_HOST": pubsub.host,
                "BIGQUERY_EMULATOR_HOST": via.host,
                "FREEZER_BIGQUERY_RETRY_S": "1",
            },
            cwd=ROOT,
        )

    def failures(self) -> int:
        if not self.log.exists():
            return 0
        return self.log.read_text().count("batch not processed: redelivered")

    def stop(self) -> None:
        processes.stop_group(self.pid)


@pytest.fixture
def freezer(
    stack: dict[str, str],
    stack_settings: StackSettings,
    freezer_pubsub: FreezerPubSub,
    switch: Switch,
) -> Iterator[Freezer]:
    worker = Freezer(stack, stack_settings, freezer_pubsub, switch)
    try:
        yield worker
    finally:
        worker.stop()


def frozen(stack: dict[str, str], event_id: str) -> int:
    rows = query(
        stack,
        f"SELECT COUNT(*) AS n FROM `{stack['GOOGLE_CLOUD_PROJECT']}.cartwise.page_views` "
        "WHERE event_id = @event_id",
        event_id=event_id,
    )
    return int(rows[0]["n"])


def wait_frozen(stack: dict[str, str], event_id: str, wait_s: float = 120) -> int:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not frozen(stack, event_id):
        time.sleep(1)
    return frozen(stack, event_id)


@pytest.mark.heavy
def test_a_batch_bigquery_refuses_is_quarantined_after_the_declared_attempts_then_redriven_once(
    stack: dict[str, str], freezer_pubsub: FreezerPubSub, switch: Switch, freezer: Freezer
) -> None:
    shopper_event = event("page_viewed")
    freezer_pubsub.publish_event("bq-outage", shopper_event)

    quarantined = freezer_pubsub.dead_lettered(wait_s=600)
    assert [m.attributes["event_id"] for m in quarantined] == [shopper_event["event_id"]]
    attempts = int(quarantined[0].attributes["CloudPubSubDeadLetterSourceDeliveryCount"])
    print(f"quarantined after {attempts} attempts, {freezer.failures()} failed batches")
    assert attempts == DECLARED.max_delivery_attempts
    assert freezer.failures() >= DECLARED.max_delivery_attempts
    assert switch.refused >= DECLARED.max_delivery_attempts
    assert frozen(stack, shopper_event["event_id"]) == 0

    # BigQuery is back; the operator re-drives what was quarantined.
    switch.up.set()
    project = stack["GOOGLE_CLOUD_PROJECT"]
    with freezer_pubsub.pointed():
        run = redrive(
            freezer_pubsub.subscriber,
            clients.publisher_api(),
            freezer_pubsub.inspection,
            clients.topic_path(project, SHOPPER_EVENTS_TOPIC),
            limit=10,
        )
    assert run.reasons == ["-"], run
    assert wait_frozen(stack, shopper_event["event_id"]) == 1
    assert not freezer_pubsub.dead_lettered(wait_s=5)
    assert frozen(stack, shopper_event["event_id"]) == 1


def test_a_batch_bigquery_refused_is_redelivered_and_frozen_once_when_it_is_back(
    stack: dict[str, str], freezer_pubsub: FreezerPubSub, switch: Switch, freezer: Freezer
) -> None:
    shopper_event = event("page_viewed")
    freezer_pubsub.publish_event("bq-outage", shopper_event)
    assert processes.wait_until(lambda: freezer.failures() >= 2, 120), freezer.failures()
    assert frozen(stack, shopper_event["event_id"]) == 0

    switch.up.set()
    assert wait_frozen(stack, shopper_event["event_id"]) == 1
    assert not freezer_pubsub.dead_lettered(wait_s=5)
    assert frozen(stack, shopper_event["event_id"]) == 1
