"""The ingest service's idempotency rules, with in-memory ports (pure logic)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contract.events import validate_event
from shared.ingestion.service import (
    EventRecord,
    IngestResult,
    ParsedEvent,
    RejectedEvent,
    StoredId,
    event_row_key,
    ingest,
    make_record,
    message_head,
    shopper_prefix,
)
from shared.platform.errors import StoreUnavailableError
from tests.factories import event


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, bytes] = {}
        self.ids: dict[str, StoredId] = {}
        self.index_down = False

    def lookup(self, id_keys: Sequence[str]) -> dict[str, StoredId]:
        return {k: self.ids[k] for k in id_keys if k in self.ids}

    def write(self, records: Sequence[EventRecord]) -> None:
        for r in records:
            self.rows[r.row_key] = r.message

    def mark_published(self, records: Sequence[EventRecord]) -> None:
        if self.index_down:
            raise StoreUnavailableError("bigtable down")
        for r in records:
            self.ids[r.id_key] = StoredId(row_key=r.row_key, digest=r.digest)


class MemoryPublisher:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.down = False

    def publish(self, records: Sequence[EventRecord]) -> None:
        if self.down:
            raise StoreUnavailableError("pubsub down")
        self.published += [r.attributes["event_id"] for r in records]


class MemorySink:
    def __init__(self) -> None:
        self.rejected: list[RejectedEvent] = []

    def record(self, rejected: Sequence[RejectedEvent]) -> None:
        self.rejected += rejected


Ports = tuple[MemoryStore, MemoryPublisher, MemorySink]


@pytest.fixture
def ports() -> Ports:
    return MemoryStore(), MemoryPublisher(), MemorySink()


def run(ports: Ports, events: Sequence[Any]) -> IngestResult:
    store, publisher, sink = ports
    parsed = [ParsedEvent(validate_event(raw), raw) for raw in events]
    return ingest("r1", parsed, store=store, publisher=publisher, rejected_sink=sink)


def test_a_failed_publish_is_republished_by_the_retry_then_reported_duplicate(ports: Ports) -> None:
    store, publisher, _ = ports
    events = [event(), event()]
    publisher.down = True
    with pytest.raises(StoreUnavailableError):
        run(ports, events)
    assert len(store.rows) == 2
    assert store.ids == {}  # not indexed: the retry stores and publishes them again
    publisher.down = False
    assert run(ports, events).accepted == 2
    assert publisher.published == [e["event_id"] for e in events]
    assert len(store.rows) == 2  # the same cells, written again
    again = run(ports, events)
    assert (again.accepted, len(again.duplicates)) == (0, 2)
    assert len(publisher.published) == 2


def test_a_failed_index_write_is_answered_503_and_the_retry_publishes_again(
    ports: Ports,
) -> None:
    # Published but not indexed: at-least-once, the consumers de-duplicate on event_id.
    store, publisher, _ = ports
    events = [event()]
    store.index_down = True
    with pytest.raises(StoreUnavailableError):
        run(ports, events)
    store.index_down = False
    assert run(ports, events).accepted == 1
    assert publisher.published == [events[0]["event_id"]] * 2
    assert len(store.rows) == 1
    assert run(ports, events).duplicates == [{"index": 0, "event_id": events[0]["event_id"]}]


def test_repeats_inside_one_batch(ports: Ports) -> None:
    first = event()
    conflicting = {**first, "payload": {**first["payload"], "url": "/other"}}
    result = run(ports, [first, first, conflicting])
    assert result.accepted == 1
    assert result.duplicates == [{"index": 1, "event_id": first["event_id"]}]
    assert [r["index"] for r in result.rejected] == [2]
    assert result.rejected[0]["reasons"][0]["code"] == "event_id_conflict"


def test_rejected_events_go_to_the_sink_with_raw_input_but_no_refused_personal_data(
    ports: Ports,
) -> None:
    _, _, sink = ports
    bad, unknown = event(age="refused-age-value"), event(loyalty_tier="gold")
    run(ports, [bad, unknown])
    assert [r.event_id for r in sink.rejected] == [bad["event_id"], unknown["event_id"]]
    assert "refused-age-value" not in sink.rejected[0].raw
    assert json.loads(sink.rejected[0].raw)["personal_data_removed"] == ["payload.age"]
    assert '"loyalty_tier": "gold"' in sink.rejected[1].raw  # replayable after a fix


def test_row_keys_group_a_shopper_and_sort_newest_first() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    older = validate_event(event(shopper_id="s1", occurred_at=now - timedelta(hours=1)))
    newer = validate_event(event(shopper_id="s1", occurred_at=now))
    assert not isinstance(older, list) and not isinstance(newer, list)
    k_old, k_new = event_row_key("r1", older), event_row_key("r1", newer)
    assert make_record("r1", newer, message_head("r1", now)).row_key == k_new
    assert k_old.startswith(shopper_prefix("r1", "s1"))
    assert k_new.startswith(shopper_prefix("r1", "s1"))
    assert k_new < k_old
    assert shopper_prefix("r1", "s1") != shopper_prefix("r2", "s1")
    assert not shopper_prefix("r1", "s1").startswith(shopper_prefix("r1", "s"))
