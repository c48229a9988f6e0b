"""The back office's cached campaign list (``CachedCampaigns``) on the Firestore emulator:
it serves the list it read while nothing changed, and sees at once what another process
wrote, deleted or flagged (the payout ledger's budget flag)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.campaigns.firestore_campaigns import CachedCampaigns, FirestoreCampaignStore
from shared.campaigns.model import Campaign
from shared.platform import clients
from shared.rewards.firestore_plays import FirestoreBudgetFlags

pytestmark = pytest.mark.integration


def test_the_cached_list_follows_every_writer(stack: dict[str, str]) -> None:
    firestore = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"])
    suffix = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)

    def campaign(name: str) -> Campaign:
        return Campaign(
            campaign_id=f"cache-{name}-{suffix}",
            name=name,
            retailer_ids=[f"cache-{suffix}"],
            experience_type="gamified_promotion",
            status="active",
            starts_at=now,
            ends_at=now + timedelta(days=3),
            targeted_brands=["Acme"],
            win_probability=0.5,
            prize_value=5,
            budget=50,
        )

    def mine(campaigns: list[Campaign]) -> dict[str, Campaign]:
        return {c.campaign_id: c for c in campaigns if c.campaign_id.endswith(suffix)}

    cached = CachedCampaigns(FirestoreCampaignStore(firestore))
    other = FirestoreCampaignStore(firestore)  # another process (another instance)
    first, second = campaign("first"), campaign("second")
    try:
        cached.put(first)
        assert set(mine(cached.all())) == {first.campaign_id}
        other.put(second)
        assert set(mine(cached.all())) == {first.campaign_id, second.campaign_id}
        FirestoreBudgetFlags(firestore).set_exhausted(second.campaign_id, True)
        assert mine(cached.all())[second.campaign_id].budget_exhausted is True
        other.delete(first.campaign_id)
        assert set(mine(cached.all())) == {second.campaign_id}
    finally:
        for c in (first, second):
            other.delete(c.campaign_id)
