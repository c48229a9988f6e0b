"""Exactly-once rows in a read model, through landing and compaction, on the emulators.

Each test has its own pair of tables (a landing table and a read model, declared like
``searches``) in a dataset of its own, and its own compaction ledger document, so that
the stack's scheduled compaction never touches them. The freezer's service, its landing
adapter, the compaction and its BigQuery and Firestore adapters are the real ones. The
expected rows are written here from the events, by hand.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contract.messages import InboundMessage
from shared.freezer.bigquery_compaction import BigQuerySlices
from shared.freezer.bigquery_landing import InsertAllLanding
from shared.freezer.compaction import Cadence, Slice, compact_pass, run
from shared.freezer.firestore_compaction import FirestoreCompactionLedger
from shared.freezer.read_models import SEARCHES, landing_of
from shared.freezer.service import freeze
from shared.platform import clients
from shared.platform.resource_model import BigQueryTable
from shared.privacy_marks.marks import OpenGate
from tests.factories import event

pytestmark = pytest.mark.integration

LAG = timedelta(seconds=1)


class DeadLetters:
    def send(self, poison: Any) -> None:
        raise AssertionError(f"nothing here is poison: {poison}")


@dataclass
class Cold:
    """A private landing + read model, the adapters over them, and a ledger."""

    stack: dict[str, str]
    project: str
    read_model: BigQueryTable
    landing: BigQueryTable
    bigquery: Any
    ledger: FirestoreCompactionLedger

    def sink(self, clock: Any = None) -> InsertAllLanding:
        return InsertAllLanding(
            self.bigquery,
            self.project,
            {SEARCHES.name: self.landing},
            clock=clock or (lambda: datetime.now(UTC)),
        )

    def warehouse(self) -> BigQuerySlices:
        return BigQuerySlices(
            self.bigquery,
            self.project,
            {SEARCHES.name: self.read_model},
            {SEARCHES.name: self.landing},
        )

    def freeze(self, messages: list[InboundMessage], clock: Any = None) -> None:
        freeze(messages, sink=self.sink(clock), dead_letters=DeadLetters(), privacy=OpenGate())

    def compact(self, owner: str = "test", warehouse: Any = None, ledger: Any = None) -> Any:
        time.sleep(LAG.total_seconds() + 0.2)  # what landed is older than the lag
        return compact_pass(
            ledger or self.ledger,
            warehouse or self.warehouse(),
            [SEARCHES.name],
            owner=owner,
            clock=lambda: datetime.now(UTC),
            lag=LAG,
            max_slice=timedelta(minutes=10),
            lease_s=30,
            start=datetime.now(UTC) - timedelta(hours=1),
        )

    def rows(self) -> list[tuple[Any, ...]]:
        ref = f"`{self.project}.{self.read_model.dataset}.{self.read_model.name}`"
        found = self.bigquery.query(
            f"SELECT row_id, event_id, retailer_id, shopper_id, query, result_count FROM {ref}"
        ).result(timeout=60)
        return sorted(tuple(r.values()) for r in found)


@pytest.fixture
def cold(stack: dict[str, str], unique: str) -> Iterator[Cold]:
    from google.cloud import bigquery

    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    dataset = f"cold_{unique}"
    client.create_dataset(f"{project}.{dataset}", timeout=30)
    read_model = SEARCHES.model_copy(update={"dataset": dataset})
    landing = landing_of(SEARCHES).model_copy(update={"dataset": dataset})
    for declared in (read_model, landing):
        table = bigquery.Table(
            f"{project}.{dataset}.{declared.name}",
            schema=[bigquery.SchemaField(c.name, c.type, mode=c.mode) for c in declared.columns],
        )
        table.time_partitioning = bigquery.TimePartitioning(
            type_=declared.partition_type, field=declared.partition_field
        )
        client.create_table(table, timeout=30)
    ledger = FirestoreCompactionLedger(clients.firestore_client(project), f"test-{unique}")
    try:
        yield Cold(stack, project, read_model, landing, client, ledger)
    finally:
        client.delete_dataset(f"{project}.{dataset}", delete_contents=True, timeout=60)


def message(e: dict[str, Any], retailer: str = "r-cold", message_id: str = "m") -> InboundMessage:
    body = {"retailer_id": retailer, "ingested_at": e["occurred_at"], "event": e}
    return InboundMessage(message_id=message_id, data=json.dumps(body).encode())


def searches(n: int, unique: str) -> list[dict[str, Any]]:
    return [
        event("search_performed", f"cold-{unique}-{i}", query=f"q{i}", result_count=i)
        for i in range(n)
    ]


def by_hand(events: list[dict[str, Any]], retailer: str = "r-cold") -> list[tuple[Any, ...]]:
    """The rows the events must give: one per event, its id prefixed by the retailer."""
    return sorted(
        (
            f"{retailer}/{e['event_id']}",
            e["event_id"],
            retailer,
            e["shopper_id"],
            e["payload"]["query"],
            e["payload"]["result_count"],
        )
        for e in events
    )


def test_the_same_messages_delivered_twice_give_each_row_once(cold: Cold, unique: str) -> None:
    events = searches(5, unique)
    batch = [message(e) for e in events]
    cold.freeze(batch)
    cold.freeze(batch[:3])  # redelivered after the ack was lost
    cold.compact()
    cold.freeze(batch)  # and once more after the compaction
    cold.compact()
    assert cold.rows() == by_hand(events)


def test_a_redelivery_while_the_first_attempt_still_writes_gives_each_row_once(
    cold: Cold, unique: str
) -> None:
    """The first attempt's append commits late (after its deadline: its landed_at is
    behind the watermark by then); the redelivered copy lands meanwhile."""
    events = searches(4, unique)
    batch = [message(e) for e in events]
    cold.compact()  # the watermark is near now
    stale = datetime.now(UTC) - timedelta(minutes=5)
    cold.freeze(batch)  # the redelivered copy
    cold.freeze(batch, clock=lambda: stale)  # the first attempt, committed late
    cold.compact()
    assert cold.rows() == by_hand(events)


def test_two_freezer_workers_racing_on_the_same_messages_give_each_row_once(
    cold: Cold, unique: str
) -> None:
    events = searches(6, unique)
    batch = [message(e) for e in events]
    workers = [
        threading.Thread(target=cold.freeze, args=(batch[i:] + batch[:i],)) for i in range(3)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    cold.compact()
    assert cold.rows() == by_hand(events)


def test_two_compactions_overlapping_one_waits_and_each_row_lands_once(
    cold: Cold, unique: str
) -> None:
    events = searches(5, unique)
    cold.freeze([message(e) for e in events])
    time.sleep(LAG.total_seconds() + 0.2)
    results: dict[str, Any] = {}
    entered = threading.Barrier(2)
    lock = threading.Lock()
    merges: list[tuple[str, Slice]] = []
    in_flight = [0, 0]  # now, most

    class Slow:
        """The real warehouse, slowed so that the two runs overlap; MERGEs recorded."""

        def __init__(self, owner: str) -> None:
            self.inner = cold.warehouse()
            self.owner = owner

        def pending(self, after: Any, until: Any) -> Any:
            return self.inner.pending(after, until)

        def merge(self, piece: Slice) -> int:
            with lock:
                merges.append((self.owner, piece))
                in_flight[0] += 1
                in_flight[1] = max(in_flight)
            try:
                time.sleep(1.0)
                return self.inner.merge(piece)
            finally:
                with lock:
                    in_flight[0] -= 1

    def compaction(owner: str) -> None:
        entered.wait()
        results[owner] = run(
            cold.ledger,
            Slow(owner),
            [SEARCHES.name],
            Cadence(
                run_for_s=0,
                pass_interval_s=1,
                lag=LAG,
                max_slice=timedelta(minutes=10),
                lease_s=30,
                start=datetime.now(UTC) - timedelta(hours=1),
            ),
            owner=owner,
            clock=lambda: datetime.now(UTC),
            sleep=time.sleep,
        )

    runs = [threading.Thread(target=compaction, args=(o,)) for o in ("a", "b")]
    for r in runs:
        r.start()
    for r in runs:
        r.join()
    # One run merged the slice; the other found the lease held and merged nothing (on
    # BigQuery two insert-only MERGEs of one slice both insert: the emulator serializes
    # them, so the rows alone would not show an overlap).
    assert len(merges) == 1 and in_flight[1] == 1, merges
    assert sorted(r.busy for r in results.values()) == [0, 1], results
    assert cold.rows() == by_hand(events)
    # The lease was released: a later run compacts what came since.
    more = searches(2, f"{unique}-more")
    cold.freeze([message(e) for e in more])
    assert not cold.compact(owner="c").busy
    assert cold.rows() == by_hand(events + more)


def test_a_compaction_killed_midway_and_run_again_gives_each_row_once(
    cold: Cold, unique: str
) -> None:
    """KilledError after its MERGE committed, before the watermark moved: the next run (after
    the dead one's one-second lease ran out) does the same slice again and inserts nothing twice."""
    events = searches(5, unique)
    cold.freeze([message(e) for e in events])

    class KilledError(Exception):
        pass

    class DiesBeforeTheWatermark:
        def __init__(self) -> None:
            self.inner = cold.ledger

        def acquire(self, owner: str, now: datetime, lease_s: float) -> Any:
            return self.inner.acquire(owner, now, 1.0)  # a short lease: it runs out soon

        def advance(self, *args: Any) -> bool:
            raise KilledError

        def release(self, owner: str) -> None:
            raise AssertionError("a killed run releases nothing")

    with pytest.raises(KilledError):
        cold.compact(owner="dead", ledger=DiesBeforeTheWatermark())
    assert cold.rows() == by_hand(events)  # its MERGE went through
    outcome = cold.compact(owner="next")
    assert not outcome.busy and outcome.inserted == {SEARCHES.name: 0}
    assert cold.rows() == by_hand(events)


def test_the_same_event_id_under_two_retailers_gives_a_row_to_each(cold: Cold, unique: str) -> None:
    (e,) = searches(1, unique)
    cold.freeze([message(e, "r-first", "1")])  # another retailer posts the id first
    cold.compact()
    cold.freeze([message(e, "r-second", "2")])
    cold.compact()
    assert cold.rows() == sorted(by_hand([e], "r-first") + by_hand([e], "r-second"))


def test_rows_frozen_before_the_retailer_was_in_row_id_are_migrated_once(
    cold: Cold, unique: str
) -> None:
    from shared.freezer.bigquery_read_models import migrate_row_ids

    (old, new) = searches(2, unique)
    ref = f"`{cold.project}.{cold.read_model.dataset}.{cold.read_model.name}`"
    cold.bigquery.query(
        f"INSERT INTO {ref} (row_id, event_id, retailer_id, shopper_id, occurred_at, "
        "ingested_at, query, result_count) VALUES "
        f"('{old['event_id']}', '{old['event_id']}', 'r-cold', '{old['shopper_id']}', "
        f"TIMESTAMP '{old['occurred_at']}', TIMESTAMP '{old['occurred_at']}', 'q0', 0)"
    ).result(timeout=60)
    assert migrate_row_ids(cold.bigquery, cold.project, [cold.read_model]) == {"searches": 1}
    assert migrate_row_ids(cold.bigquery, cold.project, [cold.read_model]) == {"searches": 0}
    # A redelivery of the old event after the migration adds nothing; a new one lands.
    cold.freeze([message(old), message(new, message_id="n")])
    cold.compact()
    assert cold.rows() == by_hand([old, new])
