"""Privacy marks: what every writer checks before it writes a shopper's data.

An erasure request or an objection writes a *mark* of the shopper (by keyed hash, never
the customer identifier) before it answers. Every component that writes or serves shopper
data (the decider, the experiences API, the three freezers, the rewards game, the
nightly's tree compilation) reads the marks of the shoppers it is about to touch, in the
same batch as its other reads, and drops what a mark blocks:

- ``objected``: everything, from the moment the objection is recorded, for as long as it
  stands (no personalization of that shopper anywhere);
- ``erased``: what the pipeline carried from *before* the erasure — an event ingested, a
  decision made, a play played, a nightly run started at or before the erasure's time —
  for ``ERASURE_MARK_DAYS``, longer than the pipeline's longest lag (Pub/Sub keeps an
  unacknowledged message at most 7 days: "message retention duration", max 7 days,
  https://cloud.google.com/pubsub/docs/subscription-properties). The shopper may shop
  again: what happens after the erasure is theirs to keep.

Pure domain logic: no cloud API here (the Bigtable adapter is ``bigtable_marks``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

# Longer than any lag of the pipeline: Pub/Sub's longest message retention (7 days). The
# Bigtable family of erasure marks is collected after this age (shared/system/resources.py).
ERASURE_MARK_DAYS = 8

SuppressionReason = Literal["erased", "objected"]
MarkKey = tuple[str, str]  # retailer, shopper hash
READ_BATCH = 1000  # shoppers looked up in one read (one ReadRows RPC)


class ShopperHasher:
    """HMAC-SHA256 of a shopper id under a per-retailer key derived from one secret."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the shopper hash key must be at least 16 bytes")
        self._key = key

    def __call__(self, retailer_id: str, shopper_id: str) -> str:
        retailer_key = hmac.new(self._key, retailer_id.encode(), hashlib.sha256).digest()
        return hmac.new(retailer_key, shopper_id.encode(), hashlib.sha256).hexdigest()


class MarkWriter(Protocol):
    """Writes a shopper's privacy mark (what every writer checks)."""

    def put(
        self, retailer_id: str, shopper_hash: str, reason: SuppressionReason, at: datetime
    ) -> None: ...


@dataclass(frozen=True)
class Marks:
    """The marks of one shopper: when they were erased (the latest erasure), whether they
    object to processing."""

    erased_at: datetime | None = None
    objected_at: datetime | None = None

    def blocks(self, at: datetime, now: datetime) -> bool:
        """True if what the pipeline carries from ``at`` (an ingestion, a decision, a play,
        a run's start) must not be written or served."""
        if self.objected_at is not None:
            return True
        if self.erased_at is None or now - self.erased_at > timedelta(days=ERASURE_MARK_DAYS):
            return False
        return at <= self.erased_at


NO_MARKS = Marks()


class PrivacyMarks(MarkWriter, Protocol):
    """The store of marks, keyed by (retailer, shopper hash)."""

    def get(self, keys: Sequence[MarkKey]) -> dict[MarkKey, Marks]:
        """The marks of these shoppers (only those that have one)."""
        ...


class PrivacyGate:
    """What a writer asks: which of these shoppers' items must be dropped."""

    def __init__(
        self,
        marks: PrivacyMarks,
        hasher: ShopperHasher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._marks = marks
        self._hasher = hasher
        self._clock = clock

    def marks(self, shoppers: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Marks]:
        """(retailer, shopper id) -> marks, in one read of the store per ``READ_BATCH``."""
        by_key = {(r, self._hasher(r, s)): (r, s) for r, s in set(shoppers)}
        keys = list(by_key)
        found: dict[tuple[str, str], Marks] = {}
        for start in range(0, len(keys), READ_BATCH):
            chunk = self._marks.get(keys[start : start + READ_BATCH])
            found.update({by_key[key]: marks for key, marks in chunk.items()})
        return found

    def blocked(self, items: Sequence[tuple[str, str, datetime]]) -> list[bool]:
        """For each (retailer, shopper id, time of the item): must it be dropped?"""
        marks = self.marks((r, s) for r, s, _ in items)
        if not marks:
            return [False] * len(items)
        now = self._clock()
        return [marks.get((r, s), NO_MARKS).blocks(at, now) for r, s, at in items]

    def blocks(self, retailer_id: str, shopper_id: str, at: datetime) -> bool:
        return self.blocked([(retailer_id, shopper_id, at)])[0]


class OpenGate:
    """No marks to check (tests of pure logic, tools that must see everything)."""

    def marks(self, shoppers: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Marks]:
        return {}

    def blocked(self, items: Sequence[tuple[str, str, datetime]]) -> list[bool]:
        return [False] * len(items)

    def blocks(self, retailer_id: str, shopper_id: str, at: datetime) -> bool:
        return False


class Gate(Protocol):
    def marks(self, shoppers: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Marks]: ...

    def blocked(self, items: Sequence[tuple[str, str, datetime]]) -> list[bool]: ...

    def blocks(self, retailer_id: str, shopper_id: str, at: datetime) -> bool: ...
