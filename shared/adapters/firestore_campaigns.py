"""Firestore adapter of ``CampaignStore``: collection ``campaigns``, one document each."""

from __future__ import annotations

from typing import Any

from shared.campaigns import Campaign

COLLECTION = "campaigns"


class FirestoreCampaignStore:
    def __init__(self, client: Any) -> None:
        self._collection = client.collection(COLLECTION)

    def put(self, campaign: Campaign) -> None:
        self._collection.document(campaign.campaign_id).set(campaign.model_dump(mode="json"))

    def get(self, campaign_id: str) -> Campaign | None:
        snapshot = self._collection.document(campaign_id).get()
        return Campaign.model_validate(snapshot.to_dict()) if snapshot.exists else None
