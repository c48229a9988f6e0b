"""Pure logic of the privacy path: hashing, retention periods, the erasure's progress and
receipts, the purge's cut-offs, the suppression filter, the store plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contract.events import validate_event
from shared.ingestion.service import ParsedEvent, ingest
from shared.journey.tracker_simulator import Session, without_shoppers
from shared.privacy.retention import DataClass, RetailerRetention, RetentionError, validate_periods
from shared.privacy.service import (
    AuditRecord,
    ErasureRequest,
    KnownSuppressions,
    RegisteredStore,
    StorePendingError,
    StoreRegistry,
    Suppression,
    SuppressionFilter,
    purge,
    request_erasure,
    run_erasure,
)
from shared.privacy.store_plan import store_names, store_plan
from shared.privacy_marks.marks import Marks, ShopperHasher, SuppressionReason
from shared.system.resources import BIGQUERY_DATA_CLASSES, RETENTION, SYSTEM
from tests.factories import event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
KEY = b"k" * 32


class Requests:
    def __init__(self) -> None:
        self.saved: dict[str, ErasureRequest] = {}
        self.puts = 0

    def put(self, request: ErasureRequest) -> None:
        self.saved[request.request_id] = request
        self.puts += 1

    def get(self, request_id: str) -> ErasureRequest | None:
        return self.saved.get(request_id)

    def running(self, limit: int) -> list[ErasureRequest]:
        return [r for r in self.saved.values() if r.status == "running"][:limit]

    def running_for(self, retailer_id: str, shopper_hash: str) -> ErasureRequest | None:
        return next(
            (
                r
                for r in self.saved.values()
                if (r.retailer_id, r.shopper_hash, r.status)
                == (retailer_id, shopper_hash, "running")
            ),
            None,
        )


class MemoryMarks:
    """The privacy marks in memory (the Bigtable adapter's semantics: latest per reason)."""

    def __init__(self) -> None:
        self.erased: dict[tuple[str, str], datetime] = {}
        self.objected: dict[tuple[str, str], datetime] = {}

    def put(self, retailer_id: str, shopper_hash: str, reason: Any, at: datetime) -> None:
        (self.erased if reason == "erased" else self.objected)[(retailer_id, shopper_hash)] = at

    def get(self, keys: Any) -> dict[tuple[str, str], Marks]:
        return {
            k: Marks(erased_at=self.erased.get(k), objected_at=self.objected.get(k))
            for k in keys
            if k in self.erased or k in self.objected
        }


class Suppressions:
    def __init__(self) -> None:
        self.items: list[Suppression] = []

    def add(self, suppression: Suppression) -> None:
        self.items.append(suppression)

    def hashes(self, retailer_id: str, reasons: Any) -> frozenset[str]:
        return frozenset(
            s.shopper_hash
            for s in self.items
            if s.retailer_id == retailer_id and s.reason in reasons
        )


class Audit:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, records: Any) -> None:
        self.records += list(records)


class Store:
    """An in-memory store of (retailer, shopper, at) records (pure logic only)."""

    def __init__(self, records: list[tuple[str, str, datetime]], pending_times: int = 0) -> None:
        self.records = records
        self.pending_times = pending_times

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        if self.pending_times:
            self.pending_times -= 1
            raise StorePendingError("rows in the streaming buffer")
        before = len(self.records)
        self.records = [r for r in self.records if (r[0], r[1]) != (retailer_id, shopper_id)]
        return before - len(self.records)

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        before = len(self.records)
        self.records = [r for r in self.records if not (r[0] == retailer_id and r[2] < cutoff)]
        return before - len(self.records)


def test_hash_is_keyed_per_retailer_and_not_the_plain_sha256() -> None:
    import hashlib

    hasher = ShopperHasher(KEY)
    assert hasher("r1", "s") == ShopperHasher(KEY)("r1", "s")
    assert hasher("r1", "s") != hasher("r2", "s")
    assert hasher("r1", "s") != ShopperHasher(b"x" * 32)("r1", "s")
    assert hasher("r1", "s") != hashlib.sha256(b"s").hexdigest()
    with pytest.raises(ValueError, match="16 bytes"):
        ShopperHasher(b"short")


def test_retention_periods_are_checked_against_the_ceiling() -> None:
    assert validate_periods(RETENTION, {"raw_events": 30}) == {DataClass.RAW_EVENTS: 30}
    with pytest.raises(RetentionError, match="ceiling"):
        validate_periods(RETENTION, {"hot_state": 10_000})
    with pytest.raises(RetentionError, match="unknown data class"):
        validate_periods(RETENTION, {"emails": 3})
    with pytest.raises(RetentionError, match="at least 1"):
        validate_periods(RETENTION, {"decisions": 0})


def test_every_bigquery_table_holding_shoppers_has_a_class_and_expires_at_its_ceiling() -> None:
    """Landing tables expire sooner: their rows wait for the compaction only."""
    from shared.freezer.read_models import LANDING_DATASET, LANDING_RETENTION_DAYS

    for table in SYSTEM.bigquery_tables:
        if "shopper_id" in table.column_names or table.name == "dead_letters":
            data_class = BIGQUERY_DATA_CLASSES[table.name]
            if table.partition_field:
                assert table.partition_expiration_days == (
                    LANDING_RETENTION_DAYS
                    if table.dataset == LANDING_DATASET
                    else RETENTION.ceiling_days[data_class]
                )


def test_the_store_plan_covers_every_table_with_shoppers() -> None:
    names = store_names()
    assert len(names) == len(set(names))
    for table in SYSTEM.bigquery_tables:
        assert (f"bigquery:{table.name}" in names) == (
            "shopper_id" in table.column_names or table.name == "dead_letters"
        )
    assert {
        "bigtable:shopper_events",
        "bigtable:shopper_state",
        "bigtable:experience_trees",
        "bigtable:rejected_events",
        "bigquery:plays",
        "firestore:rewards/claims",
        "firestore:rewards/plays",
    } <= set(names)
    classes = {p.name: p.data_class for p in store_plan()}
    assert classes["bigquery:plays"] is DataClass.REWARDS
    assert classes["bigquery:nightly_candidates"] is DataClass.FEATURES


def test_a_new_bigtable_table_without_an_eraser_is_refused() -> None:
    from shared.platform.resource_model import BigtableTable, ColumnFamily, GcRule
    from tests.unit.infra_systems import with_changes

    extra = BigtableTable(name="clicks", families=(ColumnFamily(name="c", gc=GcRule()),))
    with pytest.raises(ValueError, match="clicks"):
        store_plan(with_changes(bigtable_tables=(*SYSTEM.bigtable_tables, extra)))


def _erasure(stores: dict[str, Store]) -> tuple[StoreRegistry, Requests, Audit, ErasureRequest]:
    registry = StoreRegistry(
        RegisteredStore(name, DataClass.READ_MODELS, store) for name, store in stores.items()
    )
    requests, audit = Requests(), Audit()
    request = request_erasure(
        requests, Suppressions(), MemoryMarks(), ShopperHasher(KEY), registry.names(), "r", "s", NOW
    )
    return registry, requests, audit, request


def test_erasure_waits_for_a_pending_store_and_then_completes() -> None:
    a = Store([("r", "s", NOW), ("r", "other", NOW), ("r2", "s", NOW)])
    b = Store([("r", "s", NOW), ("r", "s", NOW)], pending_times=2)
    registry, requests, audit, request = _erasure({"a": a, "b": b})
    assert request.shopper_id == "s" and set(request.receipts) == {"a", "b"}

    def step() -> ErasureRequest:
        return run_erasure(
            requests.saved[request.request_id],
            registry,
            requests,
            audit,
            lambda: NOW,
            lambda e: False,
        )

    first = step()
    assert first.status == "running" and first.shopper_id == "s"
    assert first.receipts["a"].status == "done" and first.receipts["a"].deleted == 1
    assert first.receipts["b"].status == "pending"
    assert "streaming buffer" in (first.receipts["b"].last_error or "")
    assert audit.records == []
    assert step().receipts["b"].attempts == 2
    done = step()
    assert done.status == "done" and done.shopper_id is None
    assert done.receipts["a"].attempts == 1  # a store done is not erased again
    assert done.receipts["b"].deleted == 2 and done.receipts["b"].attempts == 3
    assert a.records == [("r", "other", NOW), ("r2", "s", NOW)]
    assert {(r.store, r.deleted) for r in audit.records} == {("a", 1), ("b", 2)}
    assert all(r.shopper_hash == ShopperHasher(KEY)("r", "s") for r in audit.records)
    assert "shopper_id" not in done.public()
    assert requests.saved[done.request_id].shopper_id is None
    assert step() == done  # a finished request is left alone


def test_a_non_transient_failure_is_raised_and_the_store_stays_pending() -> None:
    class Broken(Store):
        def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
            raise KeyError("bug")

    registry, requests, audit, request = _erasure({"a": Store([]), "b": Broken([])})
    with pytest.raises(KeyError):
        run_erasure(request, registry, requests, audit, lambda: NOW, lambda e: False)
    saved = requests.saved[request.request_id]
    assert saved.receipts["a"].status == "done" and saved.receipts["b"].status == "pending"


class Retention:
    def __init__(self, days: dict[str, dict[DataClass, int]]) -> None:
        self.days = days

    def retailers(self) -> list[str]:
        return sorted(self.days)

    def retention(self, retailer_id: str) -> RetailerRetention:
        return RetailerRetention(retailer_id=retailer_id, days=self.days[retailer_id])


def test_purge_applies_each_retailers_period_per_class_and_is_idempotent() -> None:
    old, young = NOW - timedelta(days=40), NOW - timedelta(days=20)
    events = Store([("r1", "s", old), ("r1", "s", young), ("r2", "s", old)])
    state = Store([("r1", "s", old), ("r1", "t", young)])
    registry = StoreRegistry(
        [
            RegisteredStore("events", DataClass.RAW_EVENTS, events),
            RegisteredStore("state", DataClass.HOT_STATE, state),
        ]
    )
    source = Retention({"r1": {DataClass.RAW_EVENTS: 30, DataClass.HOT_STATE: 10}, "r2": {}})
    audit = Audit()
    report = purge(registry, source, RETENTION, audit, NOW, lambda e: False)
    assert report.deleted == {"r1/events": 1, "r1/state": 2, "r2/events": 0, "r2/state": 0}
    assert events.records == [("r1", "s", young), ("r2", "s", old)]  # r2: 1,000 days
    assert state.records == []
    cutoffs = {(r.retailer_id, r.store): r.cutoff for r in audit.records}
    assert cutoffs[("r1", "events")] == NOW - timedelta(days=30)
    assert cutoffs[("r2", "events")] == NOW - timedelta(days=1000)
    again = purge(registry, source, RETENTION, Audit(), NOW, lambda e: False)
    assert sum(again.deleted.values()) == 0


def test_purge_reports_a_pending_store_without_stopping_the_others() -> None:
    class Pending(Store):
        def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
            raise StorePendingError("streaming buffer")

    kept = Store([("r", "s", NOW - timedelta(days=2000))])
    registry = StoreRegistry(
        [
            RegisteredStore("p", DataClass.READ_MODELS, Pending([])),
            RegisteredStore("k", DataClass.READ_MODELS, kept),
        ]
    )
    report = purge(registry, Retention({"r": {}}), RETENTION, Audit(), NOW, lambda e: False)
    assert report.pending == {"r/p": "streaming buffer"} and report.deleted == {"r/k": 1}


def test_suppression_filter_and_snapshot() -> None:
    hasher = ShopperHasher(KEY)
    suppressions = Suppressions()
    reason: SuppressionReason
    for shopper, reason in (("gone", "erased"), ("no", "objected")):
        suppressions.add(
            Suppression(retailer_id="r", shopper_hash=hasher("r", shopper), reason=reason, at=NOW)
        )
    objected = SuppressionFilter(suppressions, hasher, ("objected",))
    assert objected("r", "no") and not objected("r", "gone") and not objected("r2", "no")
    known = KnownSuppressions.load(suppressions, KEY, ["r", "r2"])
    assert known("r", "no") and known("r", "gone") and not known("r", "other")
    assert len(known) == 2


def test_replays_and_backfills_skip_suppressed_shoppers() -> None:
    sessions = [
        Session("r", 1, [{"shopper_id": "gone", "n": 1}, {"shopper_id": "kept", "n": 2}]),
        Session("r", 2, [{"shopper_id": "gone", "n": 3}]),
    ]
    kept = list(without_shoppers(sessions, lambda r, s: s == "gone"))
    assert [(s.basket_id, [e["n"] for e in s.events]) for s in kept] == [(1, [2])]


class Sink:
    def __init__(self) -> None:
        self.stored: list[Any] = []

    def lookup(self, keys: Any) -> dict[str, Any]:
        return {}

    def write(self, records: Any) -> None:
        self.stored += list(records)

    def mark_published(self, records: Any) -> None:
        pass

    def publish(self, records: Any) -> None:
        pass

    def record(self, rejected: Any) -> None:
        self.stored += list(rejected)


def test_ingest_refuses_a_suppressed_shoppers_events_and_stores_nothing_of_them() -> None:
    sink = Sink()
    mine, other = (
        validate_event(event(shopper_id="objector")),
        validate_event(event(shopper_id="someone")),
    )
    assert not isinstance(mine, list) and not isinstance(other, list)
    result = ingest(
        "r",
        [ParsedEvent(mine), ParsedEvent(other)],
        store=sink,
        publisher=sink,
        rejected_sink=sink,
        suppressed=lambda r, s: s == "objector",
    )
    assert result.accepted == 1
    assert [(r["index"], r["reasons"][0]["code"]) for r in result.rejected] == [
        (0, "shopper_suppressed")
    ]
    assert len(sink.stored) == 1 and "objector" not in str(sink.stored)


def test_bigquery_streaming_buffer_refusal_becomes_pending_work() -> None:
    """Real BigQuery refuses DML on streamed rows (the emulator does not): the refusal
    keeps the store pending; any other bad request is a bug and is raised."""
    from google.api_core.exceptions import BadRequest

    from shared.privacy.bigquery_erasers import BigQueryShopperRows
    from shared.rewards.read_models import PLAYS

    class Client:
        def __init__(self, message: str) -> None:
            self.message = message
            self.sql: list[str] = []

        def query(self, sql: str, **_: Any) -> Any:
            self.sql.append(sql)
            raise BadRequest(self.message)

    refusing = Client(
        "UPDATE or DELETE statement over table p.cartwise.plays would affect rows in the "
        "streaming buffer, which is not supported"
    )
    with pytest.raises(StorePendingError, match="streaming buffer"):
        BigQueryShopperRows(refusing, "p", PLAYS).erase_shopper("r", "s")
    assert refusing.sql == [
        "DELETE FROM `p.cartwise.plays` WHERE retailer_id = @r AND shopper_id = @s"
    ]
    with pytest.raises(BadRequest):
        BigQueryShopperRows(Client("Syntax error"), "p", PLAYS).erase_shopper("r", "s")


def test_dead_letter_owners_are_found_at_any_depth() -> None:
    from shared.privacy.bigquery_erasers import _owners

    message = {"retailer_id": "r", "ingested_at": "t", "event": {"shopper_id": "s", "x": [1]}}
    assert _owners(message) == {("r", "s")}
    assert _owners({"shopper_id": "s"}) == {(None, "s")}
    assert _owners(["no", 1]) == set()


def test_erasure_api_answers_only_the_requesting_retailer() -> None:
    from shared.privacy.api import ErasureApiDependencies, handle_erasure_api
    from shared.retailers.keys import ApiKey, hash_api_key

    class Keys:
        def put(self, key: ApiKey) -> None: ...

        def get(self, key_hash: str) -> ApiKey | None:
            retailer = {hash_api_key("k1"): "r1", hash_api_key("k2"): "r2"}.get(key_hash)
            return (
                ApiKey(key_hash=key_hash, retailer_id=retailer, created_at=NOW)
                if retailer
                else None
            )

    requests = Requests()
    deps = ErasureApiDependencies(
        api_keys=Keys(),
        requests=requests,
        suppressions=Suppressions(),
        marks=MemoryMarks(),
        hasher=ShopperHasher(KEY),
        store_names=lambda: ["a", "b"],
        clock=lambda: NOW,
    )

    def call(method: str, path: str, key: str, body: bytes = b"") -> Any:
        return handle_erasure_api(method, path, {"X-Api-Key": key}, body, lambda: deps)

    created = call("POST", "/v1/erasure-requests", "k1", b'{"shopper_id": "s-1"}')
    assert created.status == 202 and set(created.body["receipts"]) == {"a", "b"}
    assert "s-1" not in str(created.body)
    path = created.headers["Location"]
    assert call("GET", path, "k1").status == 200
    assert call("GET", path, "k2").status == 404
    assert call("GET", path, "nope").status == 401
    assert call("DELETE", path, "k1").status == 405
    assert call("POST", "/v1/erasure-requests", "k1", b'{"shopper_id": "a b"}').status == 400
    assert call("POST", "/v1/erasure-requests", "k1", b"[").body["error"]["code"] == "invalid_json"
    assert call("GET", "/openapi.json", "").status == 200


class Broken(Store):
    """Fails for one shopper with an error the sweep does not know (not transient)."""

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        if shopper_id == "cursed":
            raise RuntimeError("a bug in one eraser")
        return super().erase_shopper(retailer_id, shopper_id)


def test_a_repeated_request_joins_the_running_one_and_a_failing_one_blocks_no_other() -> None:
    from shared.privacy.service import run_pending_erasures

    store = Broken([("r", "cursed", NOW), ("r", "s", NOW)])
    registry = StoreRegistry([RegisteredStore("a", DataClass.READ_MODELS, store)])
    requests, audit, hasher = Requests(), Audit(), ShopperHasher(KEY)
    cursed = request_erasure(
        requests, Suppressions(), MemoryMarks(), hasher, registry.names(), "r", "cursed", NOW
    )
    first = request_erasure(
        requests, Suppressions(), MemoryMarks(), hasher, registry.names(), "r", "s", NOW
    )
    again = request_erasure(
        requests, Suppressions(), MemoryMarks(), hasher, registry.names(), "r", "s", NOW
    )
    assert again.request_id == first.request_id and len(requests.saved) == 2
    swept = run_pending_erasures(registry, requests, audit, lambda: NOW, lambda e: False)
    by_id = {r.request_id: r.status for r in swept}
    assert by_id == {cursed.request_id: "running", first.request_id: "done"}
    assert store.records == [("r", "cursed", NOW)]


def test_a_request_still_running_past_its_deadline_is_logged_as_overdue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The alert "erasure request overdue" counts this log line (docs/DEPLOY.md)."""
    from shared.privacy.service import ERASURE_DEADLINE, run_pending_erasures

    store = Broken([("r", "cursed", NOW), ("r", "s", NOW)])
    registry = StoreRegistry([RegisteredStore("a", DataClass.READ_MODELS, store)])
    requests, audit, hasher = Requests(), Audit(), ShopperHasher(KEY)
    for shopper in ("cursed", "s"):
        request_erasure(
            requests, Suppressions(), MemoryMarks(), hasher, registry.names(), "r", shopper, NOW
        )
    on_time = NOW + ERASURE_DEADLINE
    with caplog.at_level("ERROR", logger="shared.privacy.service"):
        run_pending_erasures(registry, requests, audit, lambda: on_time, lambda e: False)
    assert not [r for r in caplog.records if r.getMessage() == "erasure request overdue"]
    late = on_time + timedelta(hours=1)
    with caplog.at_level("ERROR", logger="shared.privacy.service"):
        run_pending_erasures(registry, requests, audit, lambda: late, lambda e: False)
    (overdue,) = [r for r in caplog.records if r.getMessage() == "erasure request overdue"]
    assert overdue.__dict__["age_hours"] == 73  # the cursed one; the done one is not
    assert "cursed" not in repr(overdue.__dict__)  # no shopper id in logs
