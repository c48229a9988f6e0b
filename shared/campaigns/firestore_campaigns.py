"""Firestore adapter of ``CampaignStore``: collection ``campaigns``, one document each."""

from __future__ import annotations

from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.campaigns.model import Campaign
from shared.platform.ttl_cache import TtlCache

COLLECTION = "campaigns"


class FirestoreCampaignStore:
    def __init__(self, client: Any) -> None:
        self._collection = client.collection(COLLECTION)

    def put(self, campaign: Campaign) -> None:
        self._collection.document(campaign.campaign_id).set(campaign.model_dump(mode="json"))

    def get(self, campaign_id: str) -> Campaign | None:
        snapshot = self._collection.document(campaign_id).get()
        return Campaign.model_validate(snapshot.to_dict()) if snapshot.exists else None

    def all(self) -> list[Campaign]:
        """Every campaign (the back office lists and checks conflicts among them)."""
        return [Campaign.model_validate(s.to_dict()) for s in self._collection.stream()]

    def active(self) -> list[Campaign]:
        """Every active campaign (what the default trees are compiled from)."""
        query = self._collection.where(filter=FieldFilter("status", "==", "active"))
        return [Campaign.model_validate(s.to_dict()) for s in query.stream()]


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
