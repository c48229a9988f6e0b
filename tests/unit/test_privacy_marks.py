"""Privacy marks: the rule every writer applies, and the erasure's last pass after a settle."""

from __future__ import annotations

import json
from datetime import timedelta

from shared.contract.messages import InboundMessage
from shared.freezer.service import transform
from shared.privacy.retention import DataClass
from shared.privacy.service import (
    ErasureRequest,
    RegisteredStore,
    StoreRegistry,
    object_to_processing,
    request_erasure,
    run_erasure,
    run_pending_erasures,
)
from shared.privacy_marks.marks import ERASURE_MARK_DAYS, Marks, PrivacyGate, ShopperHasher
from shared.system.resources import ERASED_FAMILY, PRIVACY_MARKS_TABLE, SYSTEM
from tests.factories import event
from tests.unit.test_privacy import KEY, NOW, Audit, MemoryMarks, Requests, Store, Suppressions


def test_an_objection_blocks_everything_and_an_erasure_what_came_before_it() -> None:
    objected = Marks(objected_at=NOW)
    assert objected.blocks(NOW - timedelta(days=400), NOW)
    assert objected.blocks(NOW + timedelta(days=400), NOW + timedelta(days=400))
    erased = Marks(erased_at=NOW)
    assert erased.blocks(NOW - timedelta(seconds=1), NOW)  # in flight from before
    assert erased.blocks(NOW, NOW)
    assert not erased.blocks(NOW + timedelta(seconds=1), NOW)  # the shopper shops again
    # Past the mark's life (longer than Pub/Sub's 7-day retention), nothing older is left.
    later = NOW + timedelta(days=ERASURE_MARK_DAYS, seconds=1)
    assert not erased.blocks(NOW - timedelta(seconds=1), later)
    assert not Marks().blocks(NOW, NOW)


def test_the_marks_table_forgets_erasures_after_the_marks_life_and_keeps_objections() -> None:
    table = next(t for t in SYSTEM.bigtable_tables if t.name == PRIVACY_MARKS_TABLE)
    families = {f.name: f.gc for f in table.families}
    assert families[ERASED_FAMILY].max_age_days == ERASURE_MARK_DAYS > 7
    assert all(gc.max_age_days is None for name, gc in families.items() if name != ERASED_FAMILY)


def test_the_gate_hashes_shoppers_and_reads_in_bounded_batches() -> None:
    marks, hasher = MemoryMarks(), ShopperHasher(KEY)
    calls: list[int] = []
    get = marks.get

    def counting(keys: list[tuple[str, str]]) -> dict[tuple[str, str], Marks]:
        calls.append(len(keys))
        return get(keys)

    marks.get = counting  # type: ignore[method-assign]
    request_erasure(Requests(), Suppressions(), marks, hasher, ["a"], "r", "gone", NOW)
    object_to_processing(Suppressions(), marks, hasher, "r", "no", NOW)
    assert all("gone" not in h and "no" not in h for _, h in [*marks.erased, *marks.objected])
    gate = PrivacyGate(marks, hasher, clock=lambda: NOW)
    before, after = NOW - timedelta(seconds=1), NOW + timedelta(seconds=1)
    items = [("r", "gone", before), ("r", "gone", after), ("r", "no", after), ("r2", "no", after)]
    assert gate.blocked(items) == [True, False, True, False]
    calls.clear()
    found = gate.marks(("r", f"s{i}") for i in range(2500))
    assert found == {} and calls == [1000, 1000, 500]


def _message(e: dict[str, object], ingested: object) -> InboundMessage:
    body = {"retailer_id": "r", "ingested_at": str(ingested), "event": e}
    return InboundMessage(message_id=str(e["event_id"]), data=json.dumps(body).encode())


def test_the_freezer_drops_what_an_erasure_left_in_flight_and_keeps_what_came_after() -> None:
    marks, hasher = MemoryMarks(), ShopperHasher(KEY)
    request_erasure(Requests(), Suppressions(), marks, hasher, ["a"], "r", "gone", NOW)
    gate = PrivacyGate(marks, hasher, clock=lambda: NOW)
    old = event("search_performed", shopper_id="gone", occurred_at=NOW, query="pasta")
    new = event("search_performed", shopper_id="gone", occurred_at=NOW, query="rice")
    other = event("search_performed", shopper_id="kept", occurred_at=NOW, query="milk")
    batch = [
        _message(old, (NOW - timedelta(seconds=5)).isoformat()),
        _message(new, (NOW + timedelta(seconds=5)).isoformat()),
        _message(other, (NOW - timedelta(seconds=5)).isoformat()),
    ]
    tables, _, events = transform(batch, gate)
    assert events == 2
    assert sorted(r["row_id"] for r in tables["searches"]) == sorted(
        [f"r/{new['event_id']}", f"r/{other['event_id']}"]
    )
    everything, _, _ = transform(batch)  # without a gate (the mutation): the old one lands
    assert len(everything["searches"]) == 3


def test_an_erasure_is_done_only_after_a_last_pass_that_starts_after_the_settle() -> None:
    store = Store([("r", "s", NOW)])
    registry = StoreRegistry([RegisteredStore("a", DataClass.READ_MODELS, store)])
    requests, audit, settle = Requests(), Audit(), timedelta(seconds=20)
    request = request_erasure(
        requests, Suppressions(), MemoryMarks(), ShopperHasher(KEY), ["a"], "r", "s", NOW
    )

    def sweep(at: int) -> str:
        saved = requests.saved[request.request_id]
        moment = NOW + timedelta(seconds=at)
        return run_erasure(
            saved, registry, requests, audit, lambda: moment, lambda e: False, settle
        ).status

    assert sweep(1) == "running"  # the first pass erased what was there
    assert store.records == []
    store.records.append(("r", "s", NOW))  # a write that began before the mark existed
    assert sweep(10) == "running"  # waiting for the settle: no pass
    assert store.records == [("r", "s", NOW)]
    assert sweep(21) == "done"  # the last pass
    assert store.records == []
    done = requests.saved[request.request_id]
    assert done.passes == 2 and done.receipts["a"].deleted == 2 and done.shopper_id is None
    assert sweep(30) == "done"


def test_the_last_pass_waits_for_a_nightly_run_in_progress() -> None:
    store = Store([("r", "s", NOW)])
    registry = StoreRegistry([RegisteredStore("a", DataClass.FEATURES, store)])
    requests, audit, settle = Requests(), Audit(), timedelta(seconds=20)
    request = request_erasure(
        requests, Suppressions(), MemoryMarks(), ShopperHasher(KEY), ["a"], "r", "s", NOW
    )
    running: list[str] = ["nightly run n-1 in progress"]

    def sweep(at: int) -> ErasureRequest:
        saved = requests.saved[request.request_id]
        moment = NOW + timedelta(seconds=at)
        return run_erasure(
            saved,
            registry,
            requests,
            audit,
            lambda: moment,
            lambda e: False,
            settle,
            lambda: running[0] if running else None,
        )

    assert sweep(1).status == "running" and store.records == []
    store.records.append(("r", "s", NOW))  # the run writes its feature rows after the pass
    waiting = sweep(25)  # past the settle, the run still in progress: no last pass
    assert waiting.status == "running" and waiting.waiting_for == "nightly run n-1 in progress"
    assert store.records == [("r", "s", NOW)]
    running.clear()  # the run ended
    done = sweep(40)
    assert done.status == "done" and done.waiting_for is None and store.records == []


def test_with_no_settle_a_run_in_progress_still_holds_the_last_pass() -> None:
    store = Store([("r", "s", NOW)])
    registry = StoreRegistry([RegisteredStore("a", DataClass.FEATURES, store)])
    requests, audit = Requests(), Audit()
    request = request_erasure(
        requests, Suppressions(), MemoryMarks(), ShopperHasher(KEY), ["a"], "r", "s", NOW
    )
    busy: list[str] = ["nightly run n-2 in progress"]

    def sweep() -> ErasureRequest:
        return run_erasure(
            requests.saved[request.request_id],
            registry,
            requests,
            audit,
            lambda: NOW,
            lambda e: False,
            timedelta(0),
            lambda: busy[0] if busy else None,
        )

    first = sweep()  # the pass erases, but cannot be the last one
    assert first.status == "running" and first.passes == 1 and store.records == []
    busy.clear()
    assert sweep().status == "done"


def test_a_sweep_asks_once_for_work_in_progress_whatever_the_number_of_requests() -> None:
    store = Store([])
    registry = StoreRegistry([RegisteredStore("a", DataClass.FEATURES, store)])
    requests, audit = Requests(), Audit()
    for shopper in ("s-1", "s-2", "s-3"):
        request_erasure(
            requests, Suppressions(), MemoryMarks(), ShopperHasher(KEY), ["a"], "r", shopper, NOW
        )
    asked: list[int] = []

    def in_progress() -> str | None:
        asked.append(1)
        return "nightly run n-3 in progress"

    swept = run_pending_erasures(
        registry, requests, audit, lambda: NOW, lambda e: False, 20, timedelta(0), in_progress
    )
    assert [r.waiting_for for r in swept] == ["nightly run n-3 in progress"] * 3
    assert len(asked) == 1


def _erased_gate() -> PrivacyGate:
    marks, hasher = MemoryMarks(), ShopperHasher(KEY)
    request_erasure(Requests(), Suppressions(), marks, hasher, ["a"], "r-1", "s-1", NOW)
    return PrivacyGate(marks, hasher, clock=lambda: NOW)


def test_the_decision_freezer_drops_decisions_made_before_the_erasure() -> None:
    from shared.decisions.engine import Decision
    from shared.decisions.read_models import transform_decisions

    def decision(n: int, shopper: str, decided: int) -> InboundMessage:
        made = Decision(
            event_id=f"e{n}",
            event_type="page_viewed",
            retailer_id="r-1",
            shopper_id=shopper,
            session_id=None,
            occurred_at=NOW,
            decided_at=NOW + timedelta(seconds=decided),
            tree_version="t",
            personal_tree=False,
            from_node="root",
            node_id="root",
            shown=[],
            withheld=[],
        )
        return InboundMessage(message_id=str(n), data=made.model_dump_json().encode())

    batch = [decision(1, "s-1", -1), decision(2, "s-1", 1), decision(3, "s-2", -1)]
    tables, _ = transform_decisions(batch, _erased_gate())
    assert sorted(r["row_id"] for r in tables["decisions"]) == ["r-1/e2", "r-1/e3"]
    everything, _ = transform_decisions(batch)  # the mutation: no gate
    assert len(everything["decisions"]) == 3


def test_the_play_freezer_drops_plays_played_before_the_erasure() -> None:
    from shared.rewards.game import play_row
    from shared.rewards.play_freezer import transform_plays
    from tests.unit.test_rewards import message, play

    batch = [
        message(1, play_row(play(play_id="p-1", played_at=NOW - timedelta(seconds=1)))),
        message(2, play_row(play(play_id="p-2", played_at=NOW + timedelta(seconds=1)))),
        message(3, play_row(play(play_id="p-3", shopper_id="s-2"))),
    ]
    rows, _ = transform_plays(batch, _erased_gate())
    assert sorted(r["play_id"] for r in rows) == ["p-2", "p-3"]
    assert len(transform_plays(batch)[0]) == 3
