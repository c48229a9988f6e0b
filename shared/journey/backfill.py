"""History backfill: simulated sessions straight into the cold read models.

The same path as live events, minus the transport: each event is validated against the
contract (``validate_event``) and turned into rows by the freezer's own transformation
(``read_models.rows_for``), then loaded in bulk by a loader that inserts only rows whose
``row_id`` is new. Backfilling a range twice inserts nothing the second time, and a
range backfilled and also replayed through the API gives the same rows (only
``ingested_at`` differs: when each path took the event in).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.contract.events import validate_event
from shared.freezer.read_models import Row, rows_for
from shared.journey.tracker_simulator import Session

log = logging.getLogger(__name__)


class ReadModelLoader(Protocol):
    def load(self, table: str, rows: Sequence[Row]) -> int:
        """Insert the rows whose ``row_id`` is new; return how many were inserted."""
        ...


@dataclass
class BackfillSummary:
    sessions: int = 0
    events: int = 0
    invalid: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    inserted: Counter[str] = field(default_factory=Counter)


def transform(
    sessions: Iterable[Session], ingested_at: datetime, summary: BackfillSummary
) -> dict[str, list[Row]]:
    """The read-model rows of these sessions, per table (the freezer's transformation)."""
    tables: dict[str, list[Row]] = {}
    for session in sessions:
        summary.sessions += 1
        for raw in session.events:
            event = validate_event(raw)
            if isinstance(event, list):
                summary.invalid += 1
                log.warning("simulated event refused", extra={"reasons": str(event)[:300]})
                continue
            summary.events += 1
            for table, rows in rows_for(session.retailer_id, event, ingested_at).items():
                tables.setdefault(table, []).extend(rows)
    for table, rows in tables.items():
        summary.rows[table] += len(rows)
    return tables


def backfill(
    chunks: Iterable[Iterable[Session]],
    loader: ReadModelLoader,
    ingested_at: datetime,
    progress: Callable[[BackfillSummary], None] | None = None,
) -> BackfillSummary:
    """Transform and load each chunk of sessions (a week, say) in turn."""
    summary = BackfillSummary()
    for chunk in chunks:
        load(transform(chunk, ingested_at, summary), loader, summary)
        if progress:
            progress(summary)
    return summary


def load(tables: dict[str, list[Row]], loader: ReadModelLoader, summary: BackfillSummary) -> None:
    for table, rows in sorted(tables.items()):
        summary.inserted[table] += loader.load(table, rows)
