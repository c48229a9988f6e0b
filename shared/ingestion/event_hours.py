"""The retention purge's time-ordered index of events (``event_hours``): pure key logic.

``shopper_events`` keys start with a salt and the shopper (``{salt}#{retailer}#{shopper}#
...``): a retailer's events of one period are spread over the whole table. The index puts
the hour right after the retailer — ``{retailer}#{YYYYMMDDHH}#{event_id}``, no shopper id —
so that a purge of everything older than a cut-off reads one contiguous range,
``{retailer}#`` up to the cut-off's hour, and nothing of what is kept but the rest of
that one hour (which a timestamp filter on occurred_at, the cell time, leaves out).

An hour, not a day: the range a purge scans beyond what it deletes is at most one hour of
the retailer's events. All of a retailer's index writes of one hour land in one key range
(one tablet): at 10 million events a day, ~116 writes/s on average, far under a node's
write throughput (docs/PRIVACY.md).
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.ingestion.service import moment_of_reverse_micros

HOUR_FORMAT = "%Y%m%d%H"


def hour_bucket(moment: datetime) -> str:
    """The UTC hour of a moment, fixed width so that keys sort in time order."""
    return moment.astimezone(UTC).strftime(HOUR_FORMAT)


def event_hour_key(id_key: str, occurred_at: datetime) -> str:
    """The index row of an event, from its ``event_ids`` key ``{retailer}#{event_id}``
    (neither part holds a '#': identifiers and uuids)."""
    retailer_id, event_id = id_key.rsplit("#", 1)
    return f"{retailer_id}#{hour_bucket(occurred_at)}#{event_id}"


def event_hour_key_of_stored(id_key: str, row_key: str) -> tuple[str, datetime]:
    """The index row of an event already stored, and its occurred_at, from its
    ``event_ids`` row: the key ``{retailer}#{event_id}`` and the event's row key
    ``{salt}#{retailer}#{shopper}#{reverse_micros(occurred_at)}#{event_id}`` (the backfill
    of events written before the index existed reads nothing else)."""
    occurred_at = moment_of_reverse_micros(row_key.rsplit("#", 2)[1])
    return event_hour_key(id_key, occurred_at), occurred_at


def id_key_of(hour_key: str) -> str:
    """The ``event_ids`` key an index row points to."""
    retailer_id, _, event_id = hour_key.rsplit("#", 2)
    return f"{retailer_id}#{event_id}"


def older_range(retailer_id: str, cutoff: datetime) -> tuple[str, str]:
    """The key range ``[start, end)`` that holds every index row of the retailer older
    than ``cutoff``: the hours before it, and its own hour (the only partly kept one)."""
    return f"{retailer_id}#", f"{retailer_id}#{hour_bucket(cutoff)}$"  # '$' follows '#'
