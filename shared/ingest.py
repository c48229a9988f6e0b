"""Ingestion of shopper events: validate, de-duplicate, persist, publish.

The service answers only after every accepted event is durably written to the event store
AND its publish is acknowledged. Idempotency rests on one index row per
``(retailer, event_id)`` holding the event's digest and whether it was published: a
retry of a request that failed half-way republishes what was stored but not published,
a repeat of a published event is reported as a duplicate, and a different event under a
used ``event_id`` is rejected as a conflict.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from shared.events import Rejection, ShopperEvent, validate_event

log = logging.getLogger(__name__)

MAX_EVENTS_PER_REQUEST = 500
MAX_REQUEST_BYTES = 1024 * 1024
FUTURE_TOLERANCE_S = 300
_REVERSE_BASE = 10**19 - 1


class StoreUnavailableError(RuntimeError):
    """A store or the topic could not be reached: nothing of the request is accepted."""


class StoredId(BaseModel):
    model_config = ConfigDict(frozen=True)

    row_key: str
    digest: str
    published: bool


class EventRecord(BaseModel):
    """One accepted event, ready to store and publish."""

    model_config = ConfigDict(frozen=True)

    id_key: str
    row_key: str
    digest: str
    occurred_at: datetime
    message: bytes
    attributes: dict[str, str]
    ordering_key: str


class RejectedEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    retailer_id: str
    index: int
    event_id: str | None
    reasons: list[Rejection]
    raw: str
    received_at: datetime


class EventStore(Protocol):
    def lookup(self, id_keys: Sequence[str]) -> dict[str, StoredId]: ...

    def write(self, records: Sequence[EventRecord]) -> None: ...

    def mark_published(self, records: Sequence[EventRecord]) -> None: ...


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


def shopper_prefix(retailer_id: str, shopper_id: str) -> str:
    """Row-key prefix of everything of one shopper; the salt spreads shoppers over tablets."""
    salt = hashlib.sha256(f"{retailer_id}#{shopper_id}".encode()).hexdigest()[:3]
    return f"{salt}#{retailer_id}#{shopper_id}#"


def reverse_micros(moment: datetime) -> str:
    """Newest first: a fixed-width decreasing rendering of the time, in microseconds."""
    micros = int(moment.timestamp() * 1_000_000)
    return f"{_REVERSE_BASE - micros:019d}"


def event_row_key(retailer_id: str, event: ShopperEvent) -> str:
    return (
        shopper_prefix(retailer_id, event.shopper_id)
        + f"{reverse_micros(event.occurred_at)}#{event.event_id}"
    )


def id_key(retailer_id: str, event_id: str) -> str:
    return f"{retailer_id}#{event_id}"


def canonical_event(event: ShopperEvent) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_none=True)


def digest(canonical: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def make_record(retailer_id: str, event: ShopperEvent, ingested_at: datetime) -> EventRecord:
    canonical = canonical_event(event)
    message = {
        "retailer_id": retailer_id,
        "ingested_at": ingested_at.isoformat(),
        "event": canonical,
    }
    return EventRecord(
        id_key=id_key(retailer_id, str(event.event_id)),
        row_key=event_row_key(retailer_id, event),
        digest=digest(canonical),
        occurred_at=event.occurred_at,
        message=json.dumps(message, separators=(",", ":")).encode(),
        attributes={
            "event_id": str(event.event_id),
            "type": event.type.value,
            "retailer_id": retailer_id,
            "schema_version": str(event.schema_version),
        },
        ordering_key=f"{retailer_id}#{event.shopper_id}",
    )


def record_from_message(row_key: str, message: bytes) -> EventRecord:
    """Rebuild the record of a stored message (replays publish exactly what ingest did)."""
    body = json.loads(message)
    event = body["event"]
    retailer_id = body["retailer_id"]
    return EventRecord(
        id_key=id_key(retailer_id, event["event_id"]),
        row_key=row_key,
        digest=digest(event),
        occurred_at=datetime.fromisoformat(event["occurred_at"]),
        message=message,
        attributes={
            "event_id": event["event_id"],
            "type": event["type"],
            "retailer_id": retailer_id,
            "schema_version": str(event["schema_version"]),
        },
        ordering_key=f"{retailer_id}#{event['shopper_id']}",
    )


# --- the service -------------------------------------------------------------------------


def _raw(value: Any) -> str:
    return json.dumps(value, default=str)[:65_536]


def ingest(
    retailer_id: str,
    raw_events: Sequence[Any],
    *,
    store: EventStore,
    publisher: EventPublisher,
    rejected_sink: RejectedEventSink,
    now: datetime | None = None,
) -> IngestResult:
    """Ingest one request's events; raise ``StoreUnavailableError`` to refuse it whole."""
    received_at = now or datetime.now(UTC)
    rejected: list[RejectedEvent] = []
    candidates: list[tuple[int, Any, EventRecord]] = []

    def reject(index: int, raw: Any, reasons: list[Rejection]) -> None:
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
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
    for index, raw in enumerate(raw_events):
        outcome = validate_event(raw)
        if isinstance(outcome, list):
            reject(index, raw, outcome)
            continue
        if (outcome.occurred_at - received_at).total_seconds() > FUTURE_TOLERANCE_S:
            reject(
                index,
                raw,
                [
                    Rejection(
                        code="occurred_in_future",
                        field="occurred_at",
                        message=f"more than {FUTURE_TOLERANCE_S}s ahead of the server clock",
                    )
                ],
            )
            continue
        record = make_record(retailer_id, outcome, received_at)
        earlier = seen.get(record.id_key)
        if earlier is not None:
            if earlier.digest == record.digest:
                duplicates.append({"index": index, "event_id": str(outcome.event_id)})
            else:
                reject(index, raw, [_conflict()])
            continue
        seen[record.id_key] = record
        candidates.append((index, raw, record))

    stored = store.lookup([record.id_key for _, _, record in candidates]) if candidates else {}
    to_write: list[EventRecord] = []
    to_publish: list[EventRecord] = []
    for index, raw, record in candidates:
        previous = stored.get(record.id_key)
        if previous is None:
            to_write.append(record)
            to_publish.append(record)
        elif previous.digest != record.digest:
            reject(index, raw, [_conflict()])
        elif previous.published:
            duplicates.append({"index": index, "event_id": record.attributes["event_id"]})
        else:
            to_publish.append(record)  # stored by an earlier attempt that failed to publish

    if rejected:
        rejected_sink.record(rejected)
    if to_write:
        store.write(to_write)
    if to_publish:
        publisher.publish(to_publish)
        store.mark_published(to_publish)
    log.info(
        "events ingested",
        extra={
            "retailer_id": retailer_id,
            "accepted": len(to_publish),
            "duplicates": len(duplicates),
            "rejected": len(rejected),
        },
    )
    return IngestResult(
        accepted=len(to_publish),
        duplicates=sorted(duplicates, key=lambda d: int(d["index"])),
        rejected=sorted(
            (
                {
                    "index": r.index,
                    "event_id": r.event_id,
                    "reasons": [reason.model_dump() for reason in r.reasons],
                }
                for r in rejected
            ),
            key=lambda d: int(str(d["index"])),
        ),
    )


def _conflict() -> Rejection:
    return Rejection(
        code="event_id_conflict",
        field="event_id",
        message="this event_id was already used for a different event",
    )
