"""Ingestion of shopper events: validate, de-duplicate, persist, publish.

The service answers only after every accepted event is durably written to the event store
AND its publish is acknowledged. Idempotency rests on one index row per
``(retailer, event_id)``, holding the event's digest and written only once the event is
stored and published: a retry of a request that failed half-way stores and publishes
again what has no index row yet, a repeat of an indexed event is reported as a
duplicate, and a different event under a used ``event_id`` is rejected as a conflict.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from shared.contract.events import (
    EVENT_ADAPTER,
    SUPPORTED_SCHEMA_VERSIONS,
    EventType,
    Rejection,
    ShopperEvent,
    canonical_json,
)
from shared.ingestion.inspection import kept_for_inspection

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024
FUTURE_TOLERANCE_S = 300
_REVERSE_BASE = 10**19 - 1


@dataclass(frozen=True, slots=True)
class StoredId:
    """The index row of an accepted event: it exists once the event is stored AND published."""

    row_key: str
    digest: str


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One accepted event, ready to store and publish."""

    id_key: str
    row_key: str
    digest: str
    occurred_at: datetime
    message: bytes
    attributes: dict[str, str]
    ordering_key: str


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One event of a request: the typed event or the reasons it was refused, and the raw
    input when it was parsed on its own (else the rejection shows the typed event)."""

    outcome: ShopperEvent | list[Rejection]
    raw: Any = None


class RejectedEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    retailer_id: str
    index: int
    event_id: str | None
    reasons: list[Rejection]
    raw: str
    received_at: datetime


class EventStore(Protocol):
    def lookup(self, id_keys: Sequence[str]) -> dict[str, StoredId]:
        """The index rows of these ``(retailer, event_id)`` keys that exist."""
        ...

    def write(self, records: Sequence[EventRecord]) -> None:
        """Store the events (idempotent: a record always lands on the same cell)."""
        ...

    def mark_published(self, records: Sequence[EventRecord]) -> None:
        """Write the index rows of stored and published events."""
        ...


class EventPublisher(Protocol):
    def publish(self, records: Sequence[EventRecord]) -> None: ...


class RejectedEventSink(Protocol):
    def record(self, rejected: Sequence[RejectedEvent]) -> None: ...


class IngestResult(BaseModel):
    accepted: int
    duplicates: list[dict[str, Any]]
    rejected: list[dict[str, Any]]

    def body(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate_count": len(self.duplicates),
            "rejected_count": len(self.rejected),
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


# --- keys and encodings ------------------------------------------------------------------


@functools.lru_cache(maxsize=65_536)
def shopper_prefix(retailer_id: str, shopper_id: str) -> str:
    """Row-key prefix of everything of one shopper; the salt spreads shoppers over tablets."""
    salt = hashlib.sha256(f"{retailer_id}#{shopper_id}".encode()).hexdigest()[:3]
    return f"{salt}#{retailer_id}#{shopper_id}#"


def reverse_micros(moment: datetime) -> str:
    """Newest first: a fixed-width decreasing rendering of the time, in microseconds."""
    micros = int(moment.timestamp() * 1_000_000)
    return f"{_REVERSE_BASE - micros:019d}"


def moment_of_reverse_micros(text: str) -> datetime:
    """The moment ``reverse_micros`` rendered (to the microsecond)."""
    micros = _REVERSE_BASE - int(text)
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def event_row_key(retailer_id: str, event: ShopperEvent) -> str:
    return (
        shopper_prefix(retailer_id, event.shopper_id)
        + f"{reverse_micros(event.occurred_at)}#{event.event_id}"
    )


def id_key(retailer_id: str, event_id: str) -> str:
    return f"{retailer_id}#{event_id}"


def message_head(retailer_id: str, ingested_at: datetime) -> bytes:
    """What precedes the event in every message of one request."""
    return (
        b'{"retailer_id":'
        + json.dumps(retailer_id).encode()
        + b',"ingested_at":"'
        + ingested_at.isoformat().encode()
        + b'","event":'
    )


def make_record(retailer_id: str, event: ShopperEvent, head: bytes) -> EventRecord:
    """``head`` is ``message_head(retailer_id, ingested_at)``, built once per request.

    On the ingest hot path (once per event): plain attribute reads and f-strings only.
    """
    canonical = canonical_json(event)
    event_id = event.event_id
    shopper_id = event.shopper_id
    occurred_at = event.occurred_at
    micros = _REVERSE_BASE - int(occurred_at.timestamp() * 1_000_000)
    return EventRecord(
        f"{retailer_id}#{event_id}",
        f"{shopper_prefix(retailer_id, shopper_id)}{micros:019d}#{event_id}",
        hashlib.sha256(canonical).hexdigest(),
        occurred_at,
        head + canonical + b"}",
        {
            "event_id": event_id,
            "type": _TYPE_NAMES[event.type],
            "retailer_id": retailer_id,
            "schema_version": _VERSION_NAMES[event.schema_version],
        },
        f"{retailer_id}#{shopper_id}",
    )


_TYPE_NAMES = {kind: kind.value for kind in EventType}
_VERSION_NAMES = {version: str(version) for version in SUPPORTED_SCHEMA_VERSIONS}


def record_from_message(row_key: str, message: bytes) -> EventRecord:
    """Rebuild the record of a stored message (replays publish exactly what ingest did)."""
    body = json.loads(message)
    event = EVENT_ADAPTER.validate_python(body["event"])
    retailer_id = body["retailer_id"]
    record = make_record(retailer_id, event, b"")
    return dataclasses.replace(record, row_key=row_key, message=message)


# --- the service -------------------------------------------------------------------------


def _raw(value: Any) -> str:
    return json.dumps(value, default=str)[:65_536]


def ingest(
    retailer_id: str,
    events: Sequence[ParsedEvent],
    *,
    store: EventStore,
    publisher: EventPublisher,
    rejected_sink: RejectedEventSink,
    now: datetime | None = None,
    suppressed: Callable[[str, str], bool] | None = None,
) -> IngestResult:
    """Ingest one request's events; raise ``StoreUnavailableError`` to refuse it whole.

    Order of writes: the events, then their publish, then their index rows. An event is
    reported accepted only once all three are done; a request that failed half-way
    leaves no index row, so its retry stores the same cells again and publishes again
    (consumers are idempotent on ``event_id``), and is then reported duplicate.

    ``suppressed(retailer_id, shopper_id)`` tells the shoppers who objected to processing:
    their events are refused with ``shopper_suppressed`` and stored nowhere (not even as
    rejected input).
    """
    received_at = now or datetime.now(UTC)
    latest = received_at + timedelta(seconds=FUTURE_TOLERANCE_S)
    head = message_head(retailer_id, received_at)
    rejected: list[RejectedEvent] = []
    candidates: list[tuple[int, ParsedEvent, EventRecord]] = []

    def reject(index: int, parsed: ParsedEvent, reasons: list[Rejection]) -> None:
        raw = parsed.raw
        if raw is None and not isinstance(parsed.outcome, list):
            raw = parsed.outcome.model_dump(mode="json", exclude_none=True)
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        raw = kept_for_inspection(raw, reasons)  # never the personal data it was refused for
        rejected.append(
            RejectedEvent(
                retailer_id=retailer_id,
                index=index,
                event_id=str(event_id) if event_id is not None else None,
                reasons=reasons,
                raw=_raw(raw),
                received_at=received_at,
            )
        )

    seen: dict[str, EventRecord] = {}
    duplicates: list[dict[str, Any]] = []
    refused: list[RejectedEvent] = []  # reported, never recorded
    for index, parsed in enumerate(events):
        event = parsed.outcome
        if isinstance(event, list):
            reject(index, parsed, event)
            continue
        if suppressed is not None and suppressed(retailer_id, event.shopper_id):
            refused.append(
                RejectedEvent(
                    retailer_id=retailer_id,
                    index=index,
                    event_id=str(event.event_id),
                    reasons=[_suppressed()],
                    raw="",
                    received_at=received_at,
                )
            )
            continue
        if event.occurred_at > latest:
            reject(index, parsed, [_in_future()])
            continue
        record = make_record(retailer_id, event, head)
        earlier = seen.get(record.id_key)
        if earlier is not None:
            if earlier.digest == record.digest:
                duplicates.append({"index": index, "event_id": record.attributes["event_id"]})
            else:
                reject(index, parsed, [_conflict()])
            continue
        seen[record.id_key] = record
        candidates.append((index, parsed, record))

    stored = store.lookup([record.id_key for _, _, record in candidates]) if candidates else {}
    accepted: list[EventRecord] = []
    for index, parsed, record in candidates:
        previous = stored.get(record.id_key)
        if previous is None:
            accepted.append(record)
        elif previous.digest != record.digest:
            reject(index, parsed, [_conflict()])
        else:
            duplicates.append({"index": index, "event_id": record.attributes["event_id"]})

    if rejected:
        rejected_sink.record(rejected)
    if accepted:
        store.write(accepted)
        publisher.publish(accepted)
        store.mark_published(accepted)
    log.info(
        "events ingested",
        extra={
            "retailer_id": retailer_id,
            "accepted": len(accepted),
            "duplicates": len(duplicates),
            "rejected": len(rejected),
            "suppressed": len(refused),
        },
    )
    return IngestResult(
        accepted=len(accepted),
        duplicates=sorted(duplicates, key=lambda d: int(d["index"])),
        rejected=sorted(
            (
                {
                    "index": r.index,
                    "event_id": r.event_id,
                    "reasons": [reason.model_dump() for reason in r.reasons],
                }
                for r in (*rejected, *refused)
            ),
            key=lambda d: int(str(d["index"])),
        ),
    )


def _in_future() -> Rejection:
    return Rejection(
        code="occurred_in_future",
        field="occurred_at",
        message=f"more than {FUTURE_TOLERANCE_S}s ahead of the server clock",
    )


def _suppressed() -> Rejection:
    return Rejection(
        code="shopper_suppressed",
        field="shopper_id",
        message="this shopper objected to the processing of their data; the event is not stored",
    )


def _conflict() -> Rejection:
    return Rejection(
        code="event_id_conflict",
        field="event_id",
        message="this event_id was already used for a different event",
    )
