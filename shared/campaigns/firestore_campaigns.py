"""Firestore adapters of the campaigns: ``CampaignStore`` (collection ``campaigns``, one
document each), the saved figures (``campaign_stats``) and the budget gate.

Every write to a campaign also writes a new token in ``campaign_versions/all`` (in the same
batch): a process that caches the campaign list (``CachedCampaigns``) reads that one
document per page and reloads the list only when it changed. The document is written once
per campaign change, far below Firestore's sustained rate of about one write per second
per document (a bulk action of the back office writes it once per campaign changed, in a
burst that Firestore absorbs; cloud.google.com/firestore/docs/best-practices).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.campaigns.model import Campaign
from shared.campaigns.stats import CampaignStats
from shared.platform.ttl_cache import TtlCache

COLLECTION = "campaigns"
STATS = "campaign_stats"
VERSIONS = "campaign_versions"
_BATCH = 400  # Firestore: at most 500 writes in a batch


def bump_version(client: Any, batch: Any | None = None) -> None:
    """A new token in ``campaign_versions/all``: cached campaign lists reload."""
    reference = client.collection(VERSIONS).document("all")
    token = {"token": uuid.uuid4().hex}
    if batch is None:
        reference.set(token)
    else:
        batch.set(reference, token)


class FirestoreCampaignStore:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._collection = client.collection(COLLECTION)

    def put(self, campaign: Campaign) -> None:
        batch = self._client.batch()
        batch.set(self._collection.document(campaign.campaign_id), campaign.model_dump(mode="json"))
        bump_version(self._client, batch)
        batch.commit()

    def get(self, campaign_id: str) -> Campaign | None:
        snapshot = self._collection.document(campaign_id).get()
        return Campaign.model_validate(snapshot.to_dict()) if snapshot.exists else None

    def delete(self, campaign_id: str) -> None:
        """Remove it (tests and operators only: the product archives, never deletes)."""
        batch = self._client.batch()
        batch.delete(self._collection.document(campaign_id))
        bump_version(self._client, batch)
        batch.commit()

    def all(self) -> list[Campaign]:
        """Every campaign (the back office lists and checks conflicts among them)."""
        return [Campaign.model_validate(s.to_dict()) for s in self._collection.stream()]

    def active(self) -> list[Campaign]:
        """Every active campaign (what the default trees are compiled from)."""
        query = self._collection.where(filter=FieldFilter("status", "==", "active"))
        return [Campaign.model_validate(s.to_dict()) for s in query.stream()]

    def competing(self, candidate: Campaign) -> list[Campaign]:
        """The campaigns sharing a retailer with ``candidate``: those a conflict can be
        with (``admin.conflicts`` checks the rest). ``array-contains-any`` takes at most 30
        values a query (Firestore's limit): more retailers, more queries. A single-field
        index serves it (Firestore creates those itself)."""
        retailers = sorted(set(candidate.retailer_ids))
        found: dict[str, Campaign] = {}
        for start in range(0, len(retailers), 30):
            query = self._collection.where(
                filter=FieldFilter(
                    "retailer_ids", "array_contains_any", retailers[start : start + 30]
                )
            )
            for snapshot in query.stream():
                found.setdefault(snapshot.id, Campaign.model_validate(snapshot.to_dict()))
        return list(found.values())

    def version(self) -> str | None:
        snapshot = self._client.collection(VERSIONS).document("all").get()
        return str(snapshot.get("token")) if snapshot.exists else None


class CachedCampaigns:
    """``CampaignStore`` with the list kept in memory while ``campaign_versions/all`` is
    unchanged: one document read per listing instead of one per campaign (the back office
    lists a thousand campaigns on every page; docs/CAMPAIGNS.md, "The portfolio"). Any
    write (this process's or another's) makes the next listing read the list again."""

    def __init__(self, store: FirestoreCampaignStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._cached: tuple[str | None, list[Campaign]] | None = None

    def put(self, campaign: Campaign) -> None:
        self._store.put(campaign)
        with self._lock:
            self._cached = None  # the next listing reads the list again

    def competing(self, candidate: Campaign) -> list[Campaign]:
        return self._store.competing(candidate)

    def get(self, campaign_id: str) -> Campaign | None:
        return self._store.get(campaign_id)

    def active(self) -> list[Campaign]:
        return self._store.active()

    def all(self) -> list[Campaign]:
        version = self._store.version()  # read before the list: a change during it reloads
        with self._lock:
            cached = self._cached
        if cached is not None and version is not None and cached[0] == version:
            return list(cached[1])
        campaigns = self._store.all()
        with self._lock:
            self._cached = (version, campaigns)
        return list(campaigns)


class FirestoreCampaignStats:
    """``CampaignStatsStore``: ``campaign_stats``, one document per campaign, read at most
    every ``ttl_s`` (they change every few minutes, when the job saves them)."""

    def __init__(self, client: Any, ttl_s: float = 30.0) -> None:
        self._client = client
        self._collection = client.collection(STATS)
        self._cache: TtlCache[dict[str, CampaignStats]] = TtlCache(ttl_s)

    def put_many(self, stats: Sequence[CampaignStats]) -> None:
        for start in range(0, len(stats), _BATCH):
            batch = self._client.batch()
            for item in stats[start : start + _BATCH]:
                batch.set(self._collection.document(item.campaign_id), item.model_dump(mode="json"))
            batch.commit()
        self._cache.forget("all")

    def all(self) -> dict[str, CampaignStats]:
        return dict(self._cache.get("all", self._load))

    def _load(self, _: str) -> dict[str, CampaignStats]:
        found = (CampaignStats.model_validate(s.to_dict()) for s in self._collection.stream())
        return {s.campaign_id: s for s in found}


class FirestoreBudgetGate:
    """The campaigns whose budget is exhausted, read at most every ``ttl_s``."""

    def __init__(self, client: Any, ttl_s: float = 10.0) -> None:
        self._collection = client.collection(COLLECTION)
        self._cache: TtlCache[frozenset[str]] = TtlCache(ttl_s)

    def exhausted(self) -> frozenset[str]:
        return self._cache.get("exhausted", self._load)

    def _load(self, _: str) -> frozenset[str]:
        query = self._collection.where(filter=FieldFilter("budget_exhausted", "==", True))
        return frozenset(snapshot.id for snapshot in query.stream())
