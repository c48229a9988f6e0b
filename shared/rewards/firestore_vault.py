"""The rewards vault: winners' e-mail addresses, in the ``rewards`` Firestore database only.

``claims/{play_id}``: the address a winner gave to be paid, with the play's retailer,
shopper and campaign. Nothing else in cartwise stores an e-mail address. Only the rewards
code path imports this module (an import-graph test forbids ingestion, freezing, decision
and training modules from importing it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.api_core.exceptions import Conflict
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.rewards.firestore_plays import delete_all, purge_older
from shared.rewards.game import Play
from shared.system.resources import CLAIMS_BY_AGE

CLAIMS = "claims"


class FirestoreRewardsVault:
    """``RewardsVault`` plus the erasure and retention hooks (privacy)."""

    def __init__(self, rewards_client: Any) -> None:
        self._client = rewards_client
        self._claims = rewards_client.collection(CLAIMS)

    def put_claim(self, play: Play, email: str, claimed_at: datetime) -> str:
        reference = self._claims.document(play.play_id)
        try:
            reference.create(
                {
                    "play_id": play.play_id,
                    "retailer_id": play.retailer_id,
                    "shopper_id": play.shopper_id,
                    "campaign_id": play.campaign_id,
                    "email": email,
                    "claimed_at": claimed_at,
                }
            )
        except Conflict:
            return str(reference.get().get("email"))
        return email

    def email_for(self, play_id: str) -> str | None:
        snapshot = self._claims.document(play_id).get()
        return str(snapshot.get("email")) if snapshot.exists else None

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        query = self._claims.where(filter=FieldFilter("retailer_id", "==", retailer_id)).where(
            filter=FieldFilter("shopper_id", "==", shopper_id)
        )
        return delete_all(self._client, query.stream())

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        # The composite index (retailer_id, claimed_at): CLAIMS_BY_AGE.
        return purge_older(self._client, CLAIMS_BY_AGE, retailer_id, cutoff)
