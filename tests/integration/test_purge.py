"""The retention purge at scale, on the emulators: it deletes exactly what is older than
the cut-off (to the minute, in the cut-off's own hour too) and reads only what it deletes,
however much is kept (docs/PRIVACY.md, "The purge").

Rows read are counted by the adapters (what Bigtable sent back); the same old data with
1x and 4x as much kept must cost the same reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contract.events import validate_event
from shared.ingestion.bigtable_events import BigtableEventStore
from shared.ingestion.event_hours import event_hour_key
from shared.ingestion.service import (
    EventRecord,
    make_record,
    message_head,
    reverse_micros,
    shopper_prefix,
)
from shared.platform import clients
from shared.platform.bigtable_raw import micros, mutate_rows
from shared.privacy.bigtable_erasers import (
    BigtablePersonalTrees,
    BigtableRejectedEvents,
    BigtableShopperEvents,
    BigtableShopperStates,
)
from shared.system.resources import (
    BIGTABLE_INSTANCE,
    EVENT_HOURS_TABLE,
    EXPERIENCE_TREES_TABLE,
    REJECTED_EVENTS_TABLE,
    REJECTED_FAMILY,
    SHOPPER_STATE_TABLE,
    STATE_FAMILY,
    TREE_FAMILY,
)
from tests.factories import event

OLD = 24  # per store: what the purge deletes
KEPT = 24  # 1x; the other retailer keeps 4x
BATCH = 10  # small pages: the paging is exercised


@dataclass
class Loaded:
    retailer: str
    old_events: list[EventRecord]
    kept_events: list[EventRecord]
    old_state: list[str]
    kept_state: list[str]


def _events(retailer: str, moments: list[datetime], prefix: str) -> list[EventRecord]:
    head = message_head(retailer, datetime.now(UTC))
    records = []
    for n, moment in enumerate(moments):
        parsed = validate_event(event(shopper_id=f"{prefix}-{n % 7}", occurred_at=moment))
        assert not isinstance(parsed, list), parsed
        records.append(make_record(retailer, parsed, head))
    return records


def load(project: str, retailer: str, cutoff: datetime, kept: int) -> Loaded:
    """``OLD`` old and ``kept`` young rows of the retailer in each Bigtable store; the old
    ones spread over 20 days before the cut-off and its own hour's minute before it, the
    young ones over the days after it and a minute after it (the cut-off's hour)."""
    client = clients.bigtable_client(project)
    api = client.table_data_client
    instance = client.instance(BIGTABLE_INSTANCE)
    old = [cutoff - timedelta(minutes=1)] + [
        cutoff - timedelta(hours=1 + 20 * n) for n in range(OLD - 1)
    ]
    young = [cutoff + timedelta(minutes=1)] + [
        cutoff + timedelta(hours=1 + 3 * n) for n in range(kept - 1)
    ]
    store = BigtableEventStore(client, BIGTABLE_INSTANCE)
    old_events, kept_events = _events(retailer, old, "o"), _events(retailer, young, "k")
    store.write(old_events + kept_events)
    store.mark_published(old_events + kept_events)
    old_state = [shopper_prefix(retailer, f"old-{n}") for n in range(OLD)]
    kept_state = [shopper_prefix(retailer, f"kept-{n}") for n in range(kept)]
    for table, family, keys in (
        (SHOPPER_STATE_TABLE, STATE_FAMILY, (old_state, kept_state)),
        (
            EXPERIENCE_TREES_TABLE,
            TREE_FAMILY,
            (
                [f"{retailer}#old-{n}" for n in range(OLD)],
                [f"{retailer}#kept-{n}" for n in range(kept)],
            ),
        ),
    ):
        rows = [
            (k.encode(), [(family, b"x", b"1", micros(t))])
            for k, t in zip(keys[0], old, strict=True)
        ]
        # A kept row has an old cell too: its newest cell keeps it.
        rows += [
            (k.encode(), [(family, b"x", b"1", micros(t)), (family, b"y", b"1", micros(old[0]))])
            for k, t in zip(keys[1], young, strict=True)
        ]
        mutate_rows(api, instance.table(table), rows)
    rejected = [
        (f"{retailer}#{reverse_micros(t)}#0000#{tag}{n}".encode(), t, tag)
        for tag, moments in (("o", old), ("k", young))
        for n, t in enumerate(moments)
    ]
    mutate_rows(
        api,
        instance.table(REJECTED_EVENTS_TABLE),
        [(k, [(REJECTED_FAMILY, b"raw", b"{}", micros(t))]) for k, t, _ in rejected],
    )
    return Loaded(retailer, old_events, kept_events, old_state, kept_state)


def adapters(project: str) -> dict[str, Any]:
    client = clients.bigtable_client(project)
    return {
        "events": BigtableShopperEvents(client, BIGTABLE_INSTANCE, batch_size=BATCH),
        "state": BigtableShopperStates(client, BIGTABLE_INSTANCE, batch_size=BATCH),
        "trees": BigtablePersonalTrees(client, BIGTABLE_INSTANCE, batch_size=BATCH),
        "rejected": BigtableRejectedEvents(client, BIGTABLE_INSTANCE, batch_size=BATCH),
    }


def keys_under(project: str, table: str, prefix: str) -> set[str]:
    instance = clients.bigtable_client(project).instance(BIGTABLE_INSTANCE)
    return {
        r.row_key.decode()
        for r in instance.table(table).read_rows(
            start_key=prefix.encode(), end_key=prefix.encode() + b"\xff"
        )
    }


@pytest.fixture
def cutoff() -> datetime:
    # Minute 30 of an hour: the cut-off's hour holds both an old and a young event.
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    return now - timedelta(days=40)


@pytest.fixture
def loaded(stack: dict[str, str], unique: str, cutoff: datetime) -> Iterator[list[Loaded]]:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    yield [
        load(project, f"purge-1x-{unique}", cutoff, KEPT),
        load(project, f"purge-4x-{unique}", cutoff, 4 * KEPT),
    ]


def test_purge_deletes_exactly_what_is_older_and_reads_only_that(
    stack: dict[str, str], loaded: list[Loaded], cutoff: datetime
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    reads: dict[str, list[int]] = {}
    for data in loaded:
        for name, adapter in adapters(project).items():
            deleted = adapter.purge_before(data.retailer, cutoff)
            assert deleted == OLD, (data.retailer, name)
            reads.setdefault(name, []).append(adapter.rows_read())
            # A second run deletes nothing, and reads nothing.
            again = adapters(project)[name]
            assert again.purge_before(data.retailer, cutoff) == 0, name
            assert again.rows_read() == 0, name

        # Exactly the young rows remain.
        store = BigtableEventStore(clients.bigtable_client(project), BIGTABLE_INSTANCE)
        every = data.old_events + data.kept_events
        found = store.lookup([r.id_key for r in every])
        assert set(found) == {r.id_key for r in data.kept_events}
        assert {f.row_key for f in found.values()} == {r.row_key for r in data.kept_events}
        events_left = set().union(
            *(
                keys_under(project, "shopper_events", shopper_prefix(data.retailer, f"{p}-{n}"))
                for p in ("o", "k")
                for n in range(7)
            )
        )
        assert events_left == {r.row_key for r in data.kept_events}
        assert keys_under(project, EVENT_HOURS_TABLE, f"{data.retailer}#") == {
            event_hour_key(r.id_key, r.occurred_at) for r in data.kept_events
        }
        state_left = set().union(
            *(keys_under(project, SHOPPER_STATE_TABLE, k) for k in data.old_state + data.kept_state)
        )
        assert state_left == set(data.kept_state)
        assert {
            k.split("#", 1)[1]
            for k in keys_under(project, EXPERIENCE_TREES_TABLE, f"{data.retailer}#")
        } == {f"kept-{n}" for n in range(len(data.kept_state))}
        rejected_left = keys_under(project, REJECTED_EVENTS_TABLE, f"{data.retailer}#")
        assert {k.rsplit("#", 1)[1][0] for k in rejected_left} == {"k"}
        assert len(rejected_left) == len(data.kept_state)

    # What was read: the deleted rows only (events: the index row and the event_ids row
    # of each), the same with 4x as much kept.
    assert reads == {
        "events": [2 * OLD] * 2,
        "state": [OLD] * 2,
        "trees": [OLD] * 2,
        "rejected": [OLD] * 2,
    }


def test_events_stored_before_the_index_are_indexed_then_purged(
    stack: dict[str, str], unique: str, cutoff: datetime
) -> None:
    """Events written before ``event_hours`` existed have no index row, so the purge
    cannot reach them; ``cartwise index-event-hours`` (``backfill_hours``) writes their
    rows from ``event_ids`` alone, and the purge then deletes exactly the old ones."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    data = load(project, f"purge-pre-{unique}", cutoff, KEPT)
    client = clients.bigtable_client(project)
    every = data.old_events + data.kept_events
    expected = {event_hour_key(r.id_key, r.occurred_at) for r in every}
    hours = client.instance(BIGTABLE_INSTANCE).table(EVENT_HOURS_TABLE)
    for key in expected:  # as before the change: no index row
        row = hours.direct_row(key.encode())
        row.delete()
        row.commit()
    assert keys_under(project, EVENT_HOURS_TABLE, f"{data.retailer}#") == set()
    assert adapters(project)["events"].purge_before(data.retailer, cutoff) == 0  # the gap

    store = BigtableEventStore(client, BIGTABLE_INSTANCE)
    pages = list(store.backfill_hours(data.retailer, batch_size=BATCH))
    assert sum(pages) == len(every) and len(pages) == len(every) // BATCH + 1
    assert keys_under(project, EVENT_HOURS_TABLE, f"{data.retailer}#") == expected
    assert sum(store.backfill_hours(data.retailer, batch_size=BATCH)) == len(every)  # rerun
    assert keys_under(project, EVENT_HOURS_TABLE, f"{data.retailer}#") == expected

    assert adapters(project)["events"].purge_before(data.retailer, cutoff) == OLD
    found = store.lookup([r.id_key for r in every])
    assert set(found) == {r.id_key for r in data.kept_events}


def test_rewards_purge_pages_through_more_than_a_batch_and_keeps_the_rest(
    stack: dict[str, str], unique: str
) -> None:
    """Claims, plays' tombstones: more old documents than one page (400), a young one, and
    another retailer's old one; the purge takes exactly the retailer's old ones."""
    from shared.rewards.firestore_plays import DELETE_BATCH, PLAYED_ORDERS, FirestorePlayStore
    from shared.rewards.firestore_vault import CLAIMS, FirestoreRewardsVault
    from shared.system.resources import REWARDS_DATABASE

    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.firestore_client(project, REWARDS_DATABASE)
    retailer, other = f"fs-purge-{unique}", f"fs-other-{unique}"
    cutoff = datetime.now(UTC) - timedelta(days=40)
    old_count = DELETE_BATCH + 5
    for collection, field in ((CLAIMS, "claimed_at"), (PLAYED_ORDERS, "played_at")):
        documents = [
            (f"{unique}-old-{n}", retailer, cutoff - timedelta(minutes=1 + n))
            for n in range(old_count)
        ]
        documents += [
            (f"{unique}-young", retailer, cutoff + timedelta(minutes=1)),
            (f"{unique}-other", other, cutoff - timedelta(days=1)),
        ]
        for start in range(0, len(documents), DELETE_BATCH):
            batch = client.batch()
            for doc_id, owner, moment in documents[start : start + DELETE_BATCH]:
                batch.set(
                    client.collection(collection).document(doc_id),
                    {"retailer_id": owner, field: moment},
                )
            batch.commit()

    assert FirestoreRewardsVault(client).purge_before(retailer, cutoff) == old_count
    FirestorePlayStore(client).purge_before(retailer, cutoff)
    for collection in (CLAIMS, PLAYED_ORDERS):
        left = {
            d.id for d in client.collection(collection).stream() if d.id.startswith(f"{unique}-")
        }
        assert left == {f"{unique}-young", f"{unique}-other"}, collection


def test_hot_state_past_its_ceiling_is_never_read_before_gc_removes_it(
    stack: dict[str, str], unique: str
) -> None:
    """Bigtable GC is asynchronous: a state cell past the 90-day rule stays readable for
    up to a week. The decider's and the experiences API's reads leave it out."""
    from shared.decisions.bigtable_state import BigtableShopperStates as States
    from shared.decisions.bigtable_state import state_key
    from shared.decisions.trees import ShopperState

    project, retailer = stack["GOOGLE_CLOUD_PROJECT"], f"ceiling-{unique}"
    client = clients.bigtable_client(project)
    now = datetime.now(UTC)
    ages = {"expired": 91, "young": 89}
    state = ShopperState(session_id="s-1", recent_event_ids=("e-1",)).model_dump_json().encode()
    mutate_rows(
        client.table_data_client,
        client.instance(BIGTABLE_INSTANCE).table(SHOPPER_STATE_TABLE),
        [
            (
                state_key(retailer, shopper),
                [(STATE_FAMILY, b"state", state, micros(now - timedelta(days=days)))],
            )
            for shopper, days in ages.items()
        ],
    )
    states = States(client, BIGTABLE_INSTANCE)
    found = states.read([(retailer, "expired"), (retailer, "young")])
    assert list(found) == [(retailer, "young")] and found[(retailer, "young")].session_id == "s-1"
    assert states.after(retailer, "expired", "e-1") == (False, None)
    assert states.after(retailer, "young", "e-1") == (True, None)
