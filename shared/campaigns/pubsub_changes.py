"""Pub/Sub adapter of ``CampaignChanges``: each saved change on ``campaign-changes``.

The ordering key is the campaign: two changes of one campaign reach the recompiler in
the order they were saved (docs/CAMPAIGNS.md, "Live in seconds").
"""

from __future__ import annotations

from shared.campaigns.model import CampaignChange
from shared.platform.pubsub_publish import SyncPublisher


class PubSubCampaignChanges(SyncPublisher):
    def published(self, change: CampaignChange) -> None:
        self._publish(
            [
                (
                    change.model_dump_json().encode(),
                    {"campaign_id": change.campaign_id, "action": change.action},
                    change.campaign_id,
                )
            ]
        )
