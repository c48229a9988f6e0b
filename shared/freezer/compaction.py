"""The compaction: new landing rows into the read models, exactly once (docs/FREEZER.md).

Each read model has a *watermark*: every landing row with ``landed_at <= watermark`` has
been compacted. A pass, for each read model:

1. takes the compaction's lease (one holder at a time; ``CompactionLedger``);
2. picks the slice ``(watermark, end]``, where ``end`` is at most ``now - lag`` (an append
   stamped before that is visible by then: ``lag`` exceeds the append deadline) and at
   most ``max_slice`` after the first landed row (a backlog is caught up in bounded
   steps);
3. runs one MERGE that inserts the slice's rows (de-duplicated on ``row_id``) whose
   ``row_id`` is not in the read model yet, looking only at the read-model partitions
   between the slice's earliest and latest ``occurred_at``;
4. moves the watermark to ``end``, if the lease is still held.

Why exactly once: the MERGE is one atomic statement and inserts nothing that is already
there, so a pass that dies before step 4 (or a re-run of any old slice) inserts nothing
the second time. Two passes never run MERGEs on one table at once: the lease outlives a
MERGE's server-side timeout (``job_timeout_s < lease_s``), so a holder that vanished has
no statement left running when the next one takes over. Overlap matters on BigQuery: a
MERGE that only inserts does not conflict with another, and both would insert.

Pure: the ledger and the warehouse are ports (Firestore, BigQuery adapters).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    """What waits in a table's landing after its watermark, up to the pass's limit."""

    rows: int
    first_landed_at: datetime | None


@dataclass(frozen=True)
class Slice:
    table: str
    after: datetime  # exclusive
    until: datetime  # inclusive


class CompactionLedger(Protocol):
    def acquire(self, owner: str, now: datetime, lease_s: float) -> dict[str, datetime] | None:
        """Take or renew the lease; the watermarks by table, or None if another holds it."""
        ...

    def advance(self, owner: str, table: str, watermark: datetime, now: datetime) -> bool:
        """Move a table's watermark forward, only while ``owner`` holds a live lease."""
        ...

    def release(self, owner: str) -> None: ...


class SliceWarehouse(Protocol):
    def pending(self, after: dict[str, datetime], until: datetime) -> dict[str, Pending]:
        """Landing rows after each table's watermark, up to ``until`` (one query)."""
        ...

    def merge(self, piece: Slice) -> int:
        """Insert the slice's new rows into its read model; return how many."""
        ...


@dataclass
class PassOutcome:
    busy: bool = False  # another compaction holds the lease
    lost_lease: bool = False
    inserted: dict[str, int] = field(default_factory=dict)
    watermarks: dict[str, datetime] = field(default_factory=dict)


def plan(
    watermarks: dict[str, datetime],
    pending: dict[str, Pending],
    limit: datetime,
    max_slice: timedelta,
) -> list[Slice]:
    """The slices of one pass: tables with landed rows, each bounded to ``max_slice``
    after its first pending row; tables with none only move their watermark to ``limit``."""
    slices = []
    for table, watermark in sorted(watermarks.items()):
        waiting = pending.get(table)
        if waiting is None or waiting.rows == 0 or waiting.first_landed_at is None:
            if limit > watermark:
                slices.append(Slice(table, watermark, limit))
            continue
        slices.append(Slice(table, watermark, min(limit, waiting.first_landed_at + max_slice)))
    return slices


def compact_pass(
    ledger: CompactionLedger,
    warehouse: SliceWarehouse,
    tables: Sequence[str],
    *,
    owner: str,
    clock: Callable[[], datetime],
    lag: timedelta,
    max_slice: timedelta,
    lease_s: float,
    start: datetime,
) -> PassOutcome:
    """One pass over every table (``start``: the watermark of a table never compacted).

    The lease is renewed before each table's statements, so that every statement starts
    with ``lease_s`` of lease ahead of it, more than its server-side timeout."""
    now = clock()
    held = ledger.acquire(owner, now, lease_s)
    if held is None:
        return PassOutcome(busy=True)
    watermarks = {t: held.get(t, start) for t in tables}
    limit = now - lag
    behind = {t: w for t, w in watermarks.items() if w < limit}
    outcome = PassOutcome(watermarks=dict(watermarks))
    if not behind:
        return outcome
    pending = warehouse.pending(behind, limit)
    for piece in plan(behind, pending, limit, max_slice):
        waiting = pending.get(piece.table)
        inserted = 0
        if waiting is not None and waiting.rows:
            if ledger.acquire(owner, clock(), lease_s) is None:
                outcome.lost_lease = True
                break
            inserted = warehouse.merge(piece)
        if not ledger.advance(owner, piece.table, piece.until, clock()):
            # Another holder took over (this pass outlived its lease): it re-runs the
            # slice, which inserts nothing that this MERGE inserted.
            outcome.lost_lease = True
            log.warning("compaction lease lost", extra={"table": piece.table})
            break
        outcome.inserted[piece.table] = inserted
        outcome.watermarks[piece.table] = piece.until
    if outcome.inserted and any(outcome.inserted.values()):
        log.info("compaction pass", extra={"inserted": outcome.inserted})
    return outcome


@dataclass(frozen=True)
class Cadence:
    """How one run of the compaction paces its passes (``CompactionSettings``)."""

    run_for_s: float
    pass_interval_s: float
    lag: timedelta
    max_slice: timedelta
    lease_s: float
    start: datetime


@dataclass
class RunOutcome:
    passes: int = 0
    busy: int = 0
    inserted: dict[str, int] = field(default_factory=dict)


def run(
    ledger: CompactionLedger,
    warehouse: SliceWarehouse,
    tables: Sequence[str],
    cadence: Cadence,
    *,
    owner: str,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> RunOutcome:
    """Passes every ``pass_interval_s`` for ``run_for_s`` (at least one), then the lease is
    released. A pass that finds the lease held elsewhere is counted ``busy``."""
    began = clock()
    outcome = RunOutcome()
    try:
        while True:
            started = clock()
            result = compact_pass(
                ledger,
                warehouse,
                tables,
                owner=owner,
                clock=clock,
                lag=cadence.lag,
                max_slice=cadence.max_slice,
                lease_s=cadence.lease_s,
                start=cadence.start,
            )
            outcome.passes += 1
            outcome.busy += result.busy
            for table, n in result.inserted.items():
                outcome.inserted[table] = outcome.inserted.get(table, 0) + n
            next_at = started + timedelta(seconds=cadence.pass_interval_s)
            if (next_at - began).total_seconds() > cadence.run_for_s:
                return outcome
            sleep(max(0.0, (next_at - clock()).total_seconds()))
    finally:
        ledger.release(owner)
