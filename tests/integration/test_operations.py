"""The operators' stream commands on the local stack: ``cartwise redrive-dead-letters``
and ``cartwise republish`` (docs/FREEZER.md, Operations).

Both commands act on shared resources (the dead-letter inspection subscription, the
``shopper-events`` topic) that other tests use too: every assertion here is about this
test's own messages only, picked out by unique shopper and event ids.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.contract.events import validate_event
from shared.contract.messages import PoisonMessage
from shared.freezer.bigquery_read_models import BigQueryReadModelSink
from shared.freezer.commands import redrive_command, republish_command
from shared.freezer.read_models import DEAD_LETTERS
from shared.freezer.republish import DEAD_LETTER_ATTRIBUTES
from shared.ingestion.service import make_record, message_head
from shared.platform import clients
from shared.platform.pubsub_dead_letters import DeadLetterFanout
from shared.system.resources import SHOPPER_EVENTS_DEAD_LETTER_TOPIC, SHOPPER_EVENTS_TOPIC
from tests.factories import event
from tests.integration.test_freezer import rows_of
from tests.integration.test_ingest_api import Tap, post

pytestmark = pytest.mark.integration


class StreamTap(Tap):
    """A ``Tap`` that tolerates other tests' messages on a shared topic (poison that is
    not JSON, or JSON without the key): they never match, instead of failing the read."""

    @staticmethod
    def _key(message: Any, key: str) -> str:
        if key in message.attributes:
            return str(message.attributes[key])
        try:
            body = json.loads(message.data)
        except ValueError:
            return ""
        return str(body.get(key)) if isinstance(body, dict) else ""


@pytest.fixture
def stream_tap(stack: dict[str, str], unique: str) -> Iterator[StreamTap]:
    tap = StreamTap(stack["GOOGLE_CLOUD_PROJECT"], SHOPPER_EVENTS_TOPIC, f"ops-{unique}")
    yield tap
    tap.delete()


def wait_for_count(
    stack: dict[str, str], table: str, shopper: str, count: int, timeout_s: float = 90
) -> list[dict[str, Any]]:
    """The shopper's rows of ``table``, once there are ``count`` (or at the deadline)."""
    deadline = time.monotonic() + timeout_s
    rows = rows_of(stack, table, [shopper])
    while len(rows) != count and time.monotonic() < deadline:
        time.sleep(1)
        rows = rows_of(stack, table, [shopper])
    return rows


def dead_letter(
    stack: dict[str, str],
    raw_event: dict[str, Any],
    reason: str,
    sources: tuple[str, ...] = ("freezer",),
) -> dict[str, str]:
    """Set a valid event aside exactly as consumers do with a message they cannot handle
    (the consumers' own dead-letter sink, ``DeadLetterFanout``), once per consumer named
    in ``sources``: the message as ingest publishes it, on ``shopper-events-dead-letter``
    with the dead-letter attributes, and counted in ``dead_letters``. It stands for a
    message dead-lettered before a fix (or after 10 failed deliveries): one a re-drive must
    bring back. Returns the attributes ingest gave it."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    retailer = stack["DEMO_RETAILER_ID"]
    parsed = validate_event(raw_event)
    assert not isinstance(parsed, list), parsed
    record = make_record(retailer, parsed, message_head(retailer, datetime.now(UTC)))
    bigquery = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    message_id = f"ops-{uuid.uuid4().hex}"
    for source in sources:
        DeadLetterFanout(
            clients.publisher_api(),
            clients.topic_path(project, SHOPPER_EVENTS_DEAD_LETTER_TOPIC),
            BigQueryReadModelSink(bigquery, project, (DEAD_LETTERS,)),
            DEAD_LETTERS.name,
            source,
        ).send(
            [
                PoisonMessage(
                    message_id=message_id,
                    reason=reason,
                    data=record.message,
                    attributes=record.attributes,
                )
            ]
        )
    return dict(record.attributes)


def test_a_dead_lettered_event_is_redriven_without_dead_letter_attributes_and_frozen_once(
    stack: dict[str, str], unique: str, stream_tap: StreamTap, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cartwise redrive-dead-letters`` takes what sits on the inspection subscription
    back to ``shopper-events`` with its original data and attributes but none of the
    dead-letter ones, one copy though two consumers set it aside, prints how many it
    re-drove and each reason counted; the re-driven event is then frozen, exactly once."""
    shopper = f"ops-redrive-{unique}"
    lost = event("page_viewed", shopper)
    reason = f"test_operations: fixed since ({unique})"
    original_attributes = dead_letter(stack, lost, reason, sources=("freezer", "decider"))

    assert redrive_command(100_000) == 0
    printed = capsys.readouterr().out

    back = stream_tap.collect({lost["event_id"]}, wait_s=30)
    assert len(back) == 1, f"{len(back)} copies of the dead-lettered event came back"
    assert dict(back[0].attributes) == original_attributes
    assert not set(back[0].attributes) & set(DEAD_LETTER_ATTRIBUTES)
    assert json.loads(back[0].data)["event"]["event_id"] == lost["event_id"]
    # Back in its shopper's order on the decider's ordered subscription.
    assert back[0].ordering_key == f"{stack['DEMO_RETAILER_ID']}#{shopper}"
    redriven = re.search(r"re-drove (\d+) dead-lettered messages to shopper-events", printed)
    assert redriven and int(redriven.group(1)) >= 1, printed
    assert re.search(rf"^\s+1  {re.escape(reason)}$", printed, re.MULTILINE), printed
    assert re.search(r"acknowledged \d+ more copies", printed), printed

    rows = wait_for_count(stack, "page_views", shopper, 1)
    assert [(r["event_id"], r["retailer_id"], r["url"]) for r in rows] == [
        (lost["event_id"], stack["DEMO_RETAILER_ID"], lost["payload"]["url"])
    ]
    # A later event of the same shopper, frozen: the re-driven one had every chance to be
    # frozen a second time by then.
    sentinel = event("search_performed", shopper, query="sentinel")
    assert post(stack, [sentinel]).json()["accepted"] == 1
    assert len(wait_for_count(stack, "searches", shopper, 1)) == 1
    assert [r["event_id"] for r in rows_of(stack, "page_views", [shopper])] == [lost["event_id"]]


def test_a_redrive_leaves_what_was_dead_lettered_after_it_started_for_the_next_run(
    stack: dict[str, str], unique: str, stream_tap: StreamTap
) -> None:
    """A run re-drives only what was dead-lettered before it started: consumers dead-letter
    a message that is still poison again at once, onto the subscription the run reads, and
    a run that took those too fed itself (a dozen poison messages became thousands in a
    minute in CI). The later message is not lost: the next run takes it."""
    from shared.freezer.pubsub_redrive import redrive

    project = stack["GOOGLE_CLOUD_PROJECT"]
    before, after = event("page_viewed", f"ops-a-{unique}"), event("page_viewed", f"ops-b-{unique}")
    dead_letter(stack, before, f"test_operations: before ({unique})")
    time.sleep(1.0)  # publish times are the emulator's clock, this machine's
    started = datetime.now(UTC)
    time.sleep(1.0)
    dead_letter(stack, after, f"test_operations: after ({unique})")
    subscriber = clients.subscriber_client()
    subscription = subscriber.subscription_path(
        project, f"{SHOPPER_EVENTS_DEAD_LETTER_TOPIC}-inspect"
    )
    topic = clients.topic_path(project, SHOPPER_EVENTS_TOPIC)

    first = redrive(subscriber, clients.publisher_api(), subscription, topic, 100_000, started)
    came = stream_tap.collect({before["event_id"], after["event_id"]}, wait_s=10)
    assert [m.attributes["event_id"] for m in came] == [before["event_id"]]
    assert first.reached_newer

    redrive(subscriber, clients.publisher_api(), subscription, topic, 100_000)
    came = stream_tap.collect({after["event_id"]}, wait_s=30)
    assert [m.attributes["event_id"] for m in came] == [after["event_id"]]


def test_republish_skips_suppressed_shoppers(
    stack: dict[str, str],
    unique: str,
    capsys: pytest.CaptureFixture[str],
    retailer_key: Callable[[str], str],
) -> None:
    """``cartwise republish`` sends a retailer's stored events of a time range back to
    ``shopper-events``, all but those of the shoppers who objected (the suppression list):
    nothing of theirs reaches the stream again, not even in an attribute."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    retailer = f"ops-{unique}"
    key = retailer_key(retailer)
    start = datetime.now(UTC) - timedelta(minutes=5)
    kept, objector = f"kept-{unique}", f"objector-{unique}"
    kinds = ("page_viewed", "search_performed", "product_added_to_basket")
    events = [
        event(kind, shopper, occurred_at=start + timedelta(seconds=i))
        for shopper in (kept, objector)
        for i, kind in enumerate(kinds)
    ]
    response = post(stack, events, api_key=key)
    assert response.json()["accepted"] == len(events), response.text
    answer = requests.post(
        f"{stack['ERASURE_URL']}/v1/suppressions",
        json={"shopper_id": objector},
        headers={"X-Api-Key": key, "Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text

    # Created after ingest published the events: what it sees is the republish only.
    tap = StreamTap(project, SHOPPER_EVENTS_TOPIC, f"ops-rp-{unique}")
    try:
        assert republish_command(retailer, start, datetime.now(UTC) + timedelta(seconds=1)) == 0
        printed = capsys.readouterr().out
        published: list[Any] = []
        kept_ids = {e["event_id"] for e in events if e["shopper_id"] == kept}
        came = tap.collect(kept_ids, wait_s=30, everything=published)
    finally:
        tap.delete()
    assert sorted(m.attributes["event_id"] for m in came) == sorted(kept_ids)
    objector_ids = {e["event_id"] for e in events if e["shopper_id"] == objector}
    assert [m for m in published if m.attributes.get("event_id") in objector_ids] == []
    assert [m for m in published if objector.encode() in m.data] == []
    assert [m for m in published if objector in str(dict(m.attributes))] == []
    assert [m for m in published if objector in m.ordering_key] == []
    assert f"republished {len(kept_ids)} events of {retailer}" in printed, printed
    assert "skipping 1 erased or suppressed shoppers" in printed, printed
