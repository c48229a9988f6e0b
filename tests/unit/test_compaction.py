"""The compaction's slices, watermarks and lease, on in-memory ports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.freezer.compaction import Pending, Slice, compact_pass, plan

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


class Ledger:
    def __init__(self) -> None:
        self.owner: str | None = None
        self.until = T0
        self.marks: dict[str, datetime] = {}

    def acquire(self, owner: str, now: datetime, lease_s: float) -> dict[str, datetime] | None:
        if self.owner not in (None, owner) and self.until > now:
            return None
        self.owner, self.until = owner, now + timedelta(seconds=lease_s)
        return dict(self.marks)

    def advance(self, owner: str, table: str, watermark: datetime, now: datetime) -> bool:
        if self.owner != owner or self.until <= now:
            return False
        self.marks[table] = watermark
        return True

    def release(self, owner: str) -> None:
        self.owner = None


class Warehouse:
    def __init__(self, landed: dict[str, list[datetime]]) -> None:
        self.landed = landed
        self.merged: list[Slice] = []

    def pending(self, after: dict[str, datetime], until: datetime) -> dict[str, Pending]:
        out = {}
        for table, mark in after.items():
            times = [t for t in self.landed.get(table, []) if mark < t <= until]
            out[table] = Pending(len(times), min(times) if times else None)
        return out

    def merge(self, piece: Slice) -> int:
        self.merged.append(piece)
        return sum(piece.after < t <= piece.until for t in self.landed[piece.table])


def test_a_backlog_is_caught_up_in_bounded_slices_and_empty_tables_just_move_on() -> None:
    pending = {"a": Pending(3, T0 + timedelta(minutes=1)), "b": Pending(0, None)}
    slices = plan({"a": T0, "b": T0}, pending, T0 + timedelta(hours=1), timedelta(minutes=10))
    assert slices == [
        Slice("a", T0, T0 + timedelta(minutes=11)),
        Slice("b", T0, T0 + timedelta(hours=1)),
    ]


def test_a_pass_merges_up_to_now_minus_the_lag_and_moves_the_watermark() -> None:
    landed = {"a": [T0 + timedelta(seconds=s) for s in (1, 2, 50)]}
    ledger, warehouse = Ledger(), Warehouse(landed)
    now = T0 + timedelta(seconds=60)
    outcome = compact_pass(
        ledger,
        warehouse,
        ["a"],
        owner="x",
        clock=lambda: now,
        lag=timedelta(seconds=15),
        max_slice=timedelta(minutes=10),
        lease_s=120,
        start=T0,
    )
    assert outcome.inserted == {"a": 2}  # the row landed at +50 s waits for the lag
    assert ledger.marks == {"a": T0 + timedelta(seconds=45)}


def test_a_second_holder_is_busy_while_the_lease_stands() -> None:
    ledger, warehouse = Ledger(), Warehouse({})
    ledger.acquire("first", T0, 120)
    outcome = compact_pass(
        ledger,
        warehouse,
        ["a"],
        owner="second",
        clock=lambda: T0 + timedelta(seconds=60),
        lag=timedelta(seconds=15),
        max_slice=timedelta(minutes=10),
        lease_s=120,
        start=T0,
    )
    assert outcome.busy and warehouse.merged == []


def test_two_overlapping_passes_never_merge_the_same_slice() -> None:
    """The second pass starts while the first one's MERGE runs (its lease stands): it
    merges nothing. On BigQuery two insert-only MERGEs of one slice would both insert.
    Checked against a ledger that grants every ``acquire`` (the lease check removed)."""
    landed = {"a": [T0 + timedelta(seconds=s) for s in (1, 2, 3)]}

    class Overlapping(Warehouse):
        """The second pass runs inside the first's MERGE; in-flight merges are counted."""

        def __init__(self) -> None:
            super().__init__(landed)
            self.in_flight = 0
            self.most_in_flight = 0
            self.second: Any = None

        def merge(self, piece: Slice) -> int:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if self.second is None:
                    self.second = pass_of("second")
                return super().merge(piece)
            finally:
                self.in_flight -= 1

    def pass_of(owner: str) -> Any:
        return compact_pass(
            ledger,
            warehouse,
            ["a"],
            owner=owner,
            clock=lambda: T0 + timedelta(seconds=60),
            lag=timedelta(seconds=15),
            max_slice=timedelta(minutes=10),
            lease_s=120,
            start=T0,
        )

    ledger, warehouse = Ledger(), Overlapping()
    first = pass_of("first")
    assert warehouse.second.busy and not first.busy and first.inserted == {"a": 3}
    assert warehouse.merged == [Slice("a", T0, T0 + timedelta(seconds=45))]
    assert warehouse.most_in_flight == 1
