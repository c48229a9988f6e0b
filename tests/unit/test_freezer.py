from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contract.messages import InboundMessage, PoisonMessage
from shared.freezer.read_models import LATE_WINDOW, READ_MODELS, Row
from shared.freezer.service import freeze, transform
from shared.platform.sinks import TransientSinkError
from shared.privacy_marks.marks import OpenGate
from shared.system.resources import SYSTEM
from shared.system.settings import FreezerSettings
from tests.factories import PAYLOADS, event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def message(
    e: Any, message_id: str = "m", retailer: str = "r1", ingested_at: datetime | None = None
) -> InboundMessage:
    """The ingest envelope; ingested when the event occurred, unless told."""
    at = ingested_at or datetime.fromisoformat(e["occurred_at"])
    body = {"retailer_id": retailer, "ingested_at": at.isoformat(), "event": e}
    return InboundMessage(message_id=message_id, data=json.dumps(body).encode())


class MemorySink:
    def __init__(self, fail: bool = False) -> None:
        self.rows: dict[str, dict[str, Row]] = {}
        self.fail = fail

    def write(self, table: str, rows: Sequence[Row]) -> int:
        if self.fail:
            raise TransientSinkError("down")
        existing = self.rows.setdefault(table, {})
        new = [r for r in rows if r["row_id"] not in existing]
        existing.update({r["row_id"]: r for r in new})
        return len(new)


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.poison: list[PoisonMessage] = []

    def send(self, poison: Sequence[PoisonMessage]) -> None:
        self.poison += poison


def test_every_event_type_feeds_its_read_models_with_the_common_columns() -> None:
    tables, poison, events = transform([message(event(k), k) for k in PAYLOADS])
    assert poison == [] and events == len(PAYLOADS)
    assert set(tables) == {t.name for t in READ_MODELS}
    declared = {t.name: [c.name for c in t.columns] for t in READ_MODELS}
    for table, rows in tables.items():
        for row in rows:
            assert list(row) == declared[table]


def test_a_cart_feeds_orders_and_one_sold_product_per_line() -> None:
    e = event("cart_validated")
    tables, _, _ = transform([message(e)])
    assert [r["row_id"] for r in tables["orders"]] == [f"r1/{e['event_id']}"]
    assert [r["row_id"] for r in tables["sold_products"]] == [
        f"r1/{e['event_id']}:0",
        f"r1/{e['event_id']}:1",
    ]
    assert tables["orders"][0]["gross_amount"] == "4.98"
    assert tables["sold_products"][0]["amount"] == "2.48"


def test_redelivery_inside_a_batch_and_across_batches_adds_nothing() -> None:
    sink, dead = MemorySink(), MemoryDeadLetters()
    batch = [message(event(k), k) for k in PAYLOADS]
    first = freeze(batch + batch, sink=sink, dead_letters=dead, privacy=OpenGate())
    assert sum(first.rows_inserted.values()) == len(PAYLOADS) + 2  # + 1 order line extra
    again = freeze(batch, sink=sink, dead_letters=dead, privacy=OpenGate())
    assert sum(again.rows_inserted.values()) == 0


def test_the_same_event_id_under_two_retailers_makes_two_rows() -> None:
    """One retailer posting another's event ids first must not hide the other's rows."""
    e = event("page_viewed")
    tables, _, events = transform([message(e, "a", "r1"), message(e, "b", "r2")])
    assert events == 2
    assert sorted(r["row_id"] for r in tables["page_views"]) == [
        f"r1/{e['event_id']}",
        f"r2/{e['event_id']}",
    ]


@pytest.mark.parametrize(
    ("occurred", "parked"),
    [
        (timedelta(days=-3, seconds=1), None),
        (timedelta(days=-3, seconds=-1), "late window"),
        (timedelta(hours=-900), "late window"),
        (timedelta(minutes=59), None),
        (timedelta(minutes=61), "far future"),
    ],
)
def test_events_outside_the_late_window_are_parked_with_their_reason(
    occurred: timedelta, parked: str | None
) -> None:
    e = event("page_viewed", occurred_at=NOW + occurred)
    sink, dead = MemorySink(), MemoryDeadLetters()
    outcome = freeze(
        [message(e, ingested_at=NOW)], sink=sink, dead_letters=dead, privacy=OpenGate()
    )
    if parked is None:
        assert outcome.poison == 0 and outcome.rows_inserted == {"page_views": 1}
    else:
        assert outcome.poison == 1 and outcome.rows_inserted == {}
        assert dead.poison[0].reason.startswith("parked: ")
        assert parked in dead.poison[0].reason


def test_the_late_window_is_the_freezers_setting_3_days_by_default() -> None:
    old = event("page_viewed", occurred_at=NOW - timedelta(days=30))
    for window, parked in ((timedelta(days=3), 1), (timedelta(days=31), 0)):
        sink, dead = MemorySink(), MemoryDeadLetters()
        outcome = freeze(
            [message(old, ingested_at=NOW)],
            sink=sink,
            dead_letters=dead,
            privacy=OpenGate(),
            late_window=window,
        )
        assert outcome.poison == parked
        assert [p.reason.split("(")[-1] for p in dead.poison] == ["late window)"] * parked
    default = FreezerSettings.model_fields["late_window_days"].default
    assert timedelta(days=default) == LATE_WINDOW


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff not json", "not a shopper-event message"),
        (json.dumps({"retailer_id": "r", "event": {}}).encode(), "not a shopper-event message"),
        (
            json.dumps(
                {
                    "retailer_id": "r",
                    "ingested_at": NOW.isoformat(),
                    "event": {**event(), "schema_version": 2},
                }
            ).encode(),
            "invalid event: schema_version",
        ),
    ],
)
def test_poison_is_dead_lettered_and_the_rest_of_the_batch_frozen(data: bytes, reason: str) -> None:
    sink, dead = MemorySink(), MemoryDeadLetters()
    good = message(event("search_performed"), "good")
    outcome = freeze(
        [InboundMessage(message_id="bad", data=data), good],
        sink=sink,
        dead_letters=dead,
        privacy=OpenGate(),
    )
    assert outcome.poison == 1
    assert [p.message_id for p in dead.poison] == ["bad"]
    assert dead.poison[0].reason.startswith(reason)
    assert outcome.rows_inserted == {"searches": 1}


def test_a_sink_failure_is_transient_for_the_whole_batch() -> None:
    with pytest.raises(TransientSinkError):
        freeze(
            [message(event())],
            sink=MemorySink(fail=True),
            dead_letters=MemoryDeadLetters(),
            privacy=OpenGate(),
        )


def test_read_models_are_declared_in_the_system() -> None:
    declared = {t.name for t in SYSTEM.bigquery_tables}
    assert {t.name for t in READ_MODELS} <= declared
    for table in READ_MODELS:
        assert table.partition_field == "occurred_at"
        assert table.clustering == ("retailer_id", "shopper_id")


class BarrierSink(MemorySink):
    """Each append waits until every table's append has started: passes only if the
    freezer appends the tables of a batch at once, not one after the other."""

    def __init__(self, tables: int, fail_table: str | None = None) -> None:
        super().__init__()
        self.barrier = threading.Barrier(tables, timeout=5)
        self.fail_table = fail_table

    def write(self, table: str, rows: Sequence[Row]) -> int:
        self.barrier.wait()
        if table == self.fail_table:
            raise TransientSinkError(f"{table} down")
        return super().write(table, rows)


def _mixed_batch() -> list[InboundMessage]:
    kinds = ["page_viewed", "search_performed", "link_clicked"]
    return [message(event(kind, "s1"), message_id=kind) for kind in kinds]


def test_a_batch_appends_its_tables_at_once() -> None:
    sink = BarrierSink(tables=3)
    outcome = freeze(
        _mixed_batch(), sink=sink, dead_letters=MemoryDeadLetters(), privacy=OpenGate()
    )
    assert outcome.rows_inserted == {"link_clicks": 1, "page_views": 1, "searches": 1}


def test_one_failed_append_fails_the_whole_batch() -> None:
    sink = BarrierSink(tables=3, fail_table="searches")
    with pytest.raises(TransientSinkError, match="searches down"):
        freeze(_mixed_batch(), sink=sink, dead_letters=MemoryDeadLetters(), privacy=OpenGate())
    # The others landed (at least once): the redelivered batch lands them again, and the
    # compaction keeps one copy of each row.
    assert set(sink.rows) == {"link_clicks", "page_views"}
