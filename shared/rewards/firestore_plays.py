"""Firestore adapters of the rewards game's play store, budget slots and voided orders.

All in the ``rewards`` database (shared/system/resources.py: REWARDS_DATABASE), none holding an
e-mail address (those are in ``firestore_rewards_vault``):

- ``plays/{play_id}``: one document per play; conditional writes on its update time.
- ``budget_slots/{campaign_id}/slots/{n}``: one document per win (the ledger entry);
  a win takes a slot with a create-if-absent write, so concurrent plays never contend
  on one document (the emulator's transactions crawl under contention: EMULATORS.md).
- ``voided_orders/{hash}``: orders cancelled or returned (a later play is refused).
- ``played_orders/{order_key}``: what an erasure keeps of a play — the keyed hash of its
  order (``game.order_key_of``) and when it was played, no shopper — so that the same order
  is never drawn again; purged with the plays.

``FirestoreBudgetFlags`` is the one write to the ``(default)`` database: the campaign's
``budget_exhausted`` field, which the decision engine reads.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from google.api_core.exceptions import Conflict, FailedPrecondition, NotFound
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.campaigns.firestore_campaigns import bump_version
from shared.platform.resource_model import FirestoreIndex
from shared.rewards.game import Play, WinEntry
from shared.system.resources import PLAYED_ORDERS_BY_AGE, PLAYS_BY_AGE

PLAYS = "plays"
BUDGET_SLOTS = "budget_slots"
SLOTS = "slots"
VOIDED_ORDERS = "voided_orders"
PLAYED_ORDERS = "played_orders"
CAMPAIGNS = "campaigns"  # in the (default) database: shared/campaigns/firestore_campaigns.py
RANDOM_PROBES = 6
CLAIM_ROUNDS = 20
DELETE_BATCH = 400


def _stored(play: Play) -> dict[str, Any]:
    data = play.model_dump(mode="json")
    data["played_at"] = play.played_at  # a timestamp: purge_before queries on it
    return data


def delete_all(client: Any, snapshots: Any) -> int:
    deleted = 0
    batch = client.batch()
    pending = 0
    for snapshot in snapshots:
        batch.delete(snapshot.reference)
        pending += 1
        deleted += 1
        if pending == DELETE_BATCH:
            batch.commit()
            batch, pending = client.batch(), 0
    if pending:
        batch.commit()
    return deleted


def purge_older(client: Any, index: FirestoreIndex, retailer_id: str, cutoff: datetime) -> int:
    """Delete a retailer's documents older than ``cutoff``, by the query ``index`` serves
    (equality on the retailer, a range on the time), a page of ``DELETE_BATCH`` at a time:
    each page reads only documents it deletes, and no query outlives Firestore's limits."""
    (equal,) = index.equal
    query = (
        client.collection(index.collection)
        .where(filter=FieldFilter(equal, "==", retailer_id))
        .where(filter=FieldFilter(index.range, "<", cutoff))
        .limit(DELETE_BATCH)
    )
    deleted = 0
    while True:
        page = list(query.stream())
        deleted += delete_all(client, page)
        if len(page) < DELETE_BATCH:
            return deleted


class FirestorePlayStore:
    """``PlayStore`` plus the erasure and retention hooks (privacy)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._plays = client.collection(PLAYS)

    def create(self, play: Play) -> object | None:
        try:
            result = self._plays.document(play.play_id).create(_stored(play))
        except Conflict:
            return None
        version: object = result.update_time
        return version

    def get(self, play_id: str) -> tuple[Play, object] | None:
        snapshot = self._plays.document(play_id).get()
        if not snapshot.exists:
            return None
        return Play.model_validate(snapshot.to_dict()), snapshot.update_time

    def replace(self, play: Play, version: object) -> bool:
        option = self._client.write_option(last_update_time=version)
        try:
            self._plays.document(play.play_id).update(_stored(play), option=option)
        except (FailedPrecondition, NotFound):
            return False
        return True

    def for_order(self, retailer_id: str, order_id: str) -> list[Play]:
        query = self._plays.where(filter=FieldFilter("retailer_id", "==", retailer_id)).where(
            filter=FieldFilter("order_id", "==", order_id)
        )
        return [Play.model_validate(s.to_dict()) for s in query.stream()]

    def played_before(self, order_key: str) -> bool:
        return bool(self._client.collection(PLAYED_ORDERS).document(order_key).get().exists)

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        """Delete the shopper's plays; each leaves its order's tombstone (written first: a
        crash in between keeps the order played)."""
        query = self._plays.where(filter=FieldFilter("retailer_id", "==", retailer_id)).where(
            filter=FieldFilter("shopper_id", "==", shopper_id)
        )
        snapshots = list(query.stream())
        tombstones = self._client.collection(PLAYED_ORDERS)
        batch, pending = self._client.batch(), 0
        for snapshot in snapshots:
            data = snapshot.to_dict() or {}
            if data.get("order_key"):
                batch.set(
                    tombstones.document(data["order_key"]),
                    {"retailer_id": retailer_id, "played_at": data.get("played_at")},
                )
                pending += 1
            if pending == DELETE_BATCH:
                batch.commit()
                batch, pending = self._client.batch(), 0
        if pending:
            batch.commit()
        return delete_all(self._client, snapshots)

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        # Composite indexes (retailer_id, played_at) on both collections, declared in
        # shared/system/resources.py: PLAYS_BY_AGE, PLAYED_ORDERS_BY_AGE.
        deleted = purge_older(self._client, PLAYS_BY_AGE, retailer_id, cutoff)
        # The tombstones are not the shopper's: not counted.
        purge_older(self._client, PLAYED_ORDERS_BY_AGE, retailer_id, cutoff)
        return deleted


class FirestoreBudgetSlots:
    """``BudgetSlots``: one document per taken slot, claimed by create-if-absent."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _slots(self, campaign_id: str) -> Any:
        return self._client.collection(BUDGET_SLOTS).document(campaign_id).collection(SLOTS)

    def _try(self, entry: WinEntry, slot: int) -> bool:
        data = entry.model_copy(update={"slot": slot}).model_dump(mode="json")
        try:
            self._slots(entry.campaign_id).document(str(slot)).create(data)
        except Conflict:
            return False
        return True

    def claim(self, entry: WinEntry, slots: int, crowded: bool = False) -> int | None:
        if slots <= 0:
            return None
        if crowded and self.count(entry.campaign_id) >= slots:
            return None  # a count aggregation (~10 ms) instead of listing every slot
        for _ in range(0 if crowded else RANDOM_PROBES):  # cheap while most slots are free
            slot = secrets.randbelow(slots)
            if self._try(entry, slot):
                return slot
        for _ in range(CLAIM_ROUNDS):  # then: the free slots, listed, in random order
            listed = self._slots(entry.campaign_id).select([]).stream()  # ids only
            taken = {int(snapshot.id) for snapshot in listed}
            free = [n for n in range(slots) if n not in taken]
            if not free:
                return None
            secrets.SystemRandom().shuffle(free)
            for slot in free:
                if self._try(entry, slot):
                    return slot
        return None

    def slot_of(self, campaign_id: str, play_id: str) -> int | None:
        query = self._slots(campaign_id).where(filter=FieldFilter("play_id", "==", play_id))
        for snapshot in query.limit(1).stream():
            return int(snapshot.id)
        return None

    def release(self, campaign_id: str, slot: int, play_id: str) -> None:
        reference = self._slots(campaign_id).document(str(slot))
        snapshot = reference.get()
        if not snapshot.exists or snapshot.get("play_id") != play_id:
            return
        option = self._client.write_option(last_update_time=snapshot.update_time)
        try:
            reference.delete(option=option)
        except (FailedPrecondition, NotFound):
            return  # changed meanwhile: someone else's now

    def mark_paid(self, campaign_id: str, slot: int, paid_at: datetime) -> None:
        self._slots(campaign_id).document(str(slot)).update(
            {"paid": True, "paid_at": paid_at.isoformat()}
        )

    def entries(self, campaign_id: str) -> list[WinEntry]:
        return [WinEntry.model_validate(s.to_dict()) for s in self._slots(campaign_id).stream()]

    def count(self, campaign_id: str) -> int:
        """A server-side count aggregation: no document is read."""
        result = self._slots(campaign_id).count().get()
        return int(result[0][0].value)


def _order_key(retailer_id: str, order_id: str) -> str:
    return hashlib.sha256(f"{retailer_id}\x1f{order_id}".encode()).hexdigest()


class FirestoreVoidedOrders:
    def __init__(self, client: Any) -> None:
        self._orders = client.collection(VOIDED_ORDERS)

    def mark(self, retailer_id: str, order_id: str, at: datetime) -> None:
        self._orders.document(_order_key(retailer_id, order_id)).set(
            {"retailer_id": retailer_id, "order_id": order_id, "voided_at": at}
        )

    def voided(self, retailer_id: str, order_id: str) -> bool:
        return bool(self._orders.document(_order_key(retailer_id, order_id)).get().exists)


class FirestoreBudgetFlags:
    """Sets ``Campaign.budget_exhausted`` in the ``(default)`` database's campaigns."""

    def __init__(self, default_client: Any) -> None:
        self._client = default_client
        self._campaigns = default_client.collection(CAMPAIGNS)

    def set_exhausted(self, campaign_id: str, exhausted: bool) -> None:
        reference = self._campaigns.document(campaign_id)
        snapshot = reference.get()
        if snapshot.exists and snapshot.get("budget_exhausted") != exhausted:
            batch = self._client.batch()
            batch.update(reference, {"budget_exhausted": exhausted})
            bump_version(self._client, batch)  # the back office's cached lists reload
            batch.commit()
