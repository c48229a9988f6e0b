"""The freezer: shopper-event messages into cold read models, exactly once in effect.

Delivery is at-least-once; the effect is exactly-once because every row has a
deterministic ``row_id`` (with the retailer): the sink appends the batch (de-duplicated)
to the landing tables, at least once, and the compaction (``compaction``) inserts into the
read models only the rows whose ``row_id`` is not there yet. An event outside the late
window (``read_models.outside_window``) is parked: dead-lettered with its reason. A
message that can never be frozen (not JSON, unknown schema version, invalid event) is a
*poison* message: it goes to the
dead-letter sink with its reason and is acknowledged; a sink failure is transient: the
whole batch is retried.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Protocol

from pydantic import BaseModel

from shared.contract.messages import InboundMessage, PoisonMessage, parse
from shared.freezer.read_models import LATE_WINDOW, Row, outside_window, rows_for
from shared.platform.sinks import DeadLetterSink
from shared.privacy_marks.marks import Gate, OpenGate

log = logging.getLogger(__name__)


class ReadModelSink(Protocol):
    def write(self, table: str, rows: Sequence[Row]) -> int:
        """Write a read model's rows (appended to its landing, or merged on row_id);
        return how many were written. Returns once they are durable."""
        ...


class FreezeOutcome(BaseModel):
    events: int
    rows_inserted: dict[str, int]
    poison: int
    suppressed: int = 0  # events dropped by a privacy mark


def transform(
    messages: Sequence[InboundMessage],
    privacy: Gate | None = None,
    late_window: timedelta = LATE_WINDOW,
) -> tuple[dict[str, list[Row]], list[PoisonMessage], int]:
    """Rows per table (de-duplicated on row_id), poison messages, and events counted.

    With ``privacy``, an event a privacy mark blocks (an objected shopper's; an erased
    shopper's ingested before the erasure) yields no row and is not counted."""
    tables: dict[str, dict[str, Row]] = defaultdict(dict)
    poison: list[PoisonMessage] = []
    events: set[str] = set()
    parsed_events = []
    for message in messages:
        parsed = parse(message)
        if isinstance(parsed, str):
            poison.append(PoisonMessage.of(message, parsed))
            continue
        parked = outside_window(parsed[1].occurred_at, parsed[2], late_window)
        if parked is not None:
            poison.append(PoisonMessage.of(message, parked))
            continue
        parsed_events.append(parsed)
    gate = privacy or OpenGate()
    blocked = gate.blocked([(r, e.shopper_id, at) for r, e, at in parsed_events])
    for (retailer_id, event, ingested_at), drop in zip(parsed_events, blocked, strict=True):
        if drop:
            continue
        events.add(f"{retailer_id}#{event.event_id}")
        for table, rows in rows_for(retailer_id, event, ingested_at).items():
            for row in rows:
                tables[table].setdefault(row["row_id"], row)
    return {t: list(rows.values()) for t, rows in tables.items()}, poison, len(events)


def _append_all(sink: ReadModelSink, tables: dict[str, list[Row]]) -> dict[str, int]:
    """One append per table, all at once: a batch waits for its slowest append, not for
    their sum. The landing is at least once, so a failed append fails the whole batch
    (redelivered) even when the others landed: the compaction keeps one copy of each row."""
    if len(tables) <= 1:
        return {table: sink.write(table, rows) for table, rows in tables.items()}
    with ThreadPoolExecutor(max_workers=len(tables)) as pool:
        futures = {table: pool.submit(sink.write, table, rows) for table, rows in tables.items()}
        return {table: futures[table].result() for table in sorted(futures)}


def freeze(
    messages: Sequence[InboundMessage],
    *,
    sink: ReadModelSink,
    dead_letters: DeadLetterSink,
    privacy: Gate,
    late_window: timedelta = LATE_WINDOW,
) -> FreezeOutcome:
    """Freeze one batch; raise ``TransientSinkError`` to have the whole batch redelivered.
    Events a privacy mark blocks are dropped (docs/PRIVACY.md)."""
    tables, poison, events = transform(messages, privacy, late_window)
    if poison:
        dead_letters.send(poison)
        for item in poison:
            log.warning(
                "poison message dead-lettered",
                extra={"message_id": item.message_id, "reason": item.reason},
            )
    inserted = _append_all(sink, tables)
    log.info(
        "batch frozen",
        extra={
            "events": events,
            "rows_inserted": inserted,
            "poison": len(poison),
            "messages": len(messages),
        },
    )
    return FreezeOutcome(events=events, rows_inserted=inserted, poison=len(poison))
