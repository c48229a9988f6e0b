"""The rewards game's dependencies, built once per process (clients created on first use).

Kept apart from ``composition.py`` on purpose: that module serves the ingestion, freezing
and decision code paths, which must never import the rewards vault (e-mail addresses).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from shared.rewards.game import RewardsDependencies, RewardsVault


@dataclass(frozen=True)
class RewardsComposition:
    rewards: RewardsDependencies
    vault: RewardsVault
    default_client: Any
    rewards_client: Any


def unavailable_errors() -> tuple[type[Exception], ...]:
    """What a caller answers with 503 (retry): the stores or the topic not reachable."""
    from google.api_core.exceptions import (
        DeadlineExceeded,
        InternalServerError,
        RetryError,
        ServiceUnavailable,
    )

    from shared.rewards.pubsub_plays import PublishFailedError

    return (
        DeadlineExceeded,
        InternalServerError,
        RetryError,
        ServiceUnavailable,
        PublishFailedError,
    )


def build(
    project: str, rewards_database: str, plays_topic: str, signing_key: str
) -> RewardsComposition:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.platform import clients
    from shared.rewards.firestore_plays import (
        FirestoreBudgetFlags,
        FirestoreBudgetSlots,
        FirestorePlayStore,
        FirestoreVoidedOrders,
    )
    from shared.rewards.firestore_vault import FirestoreRewardsVault
    from shared.rewards.pubsub_plays import PubSubPlayPublisher

    default = clients.firestore_client(project)
    rewards = clients.firestore_client(project, rewards_database)
    return RewardsComposition(
        rewards=RewardsDependencies(
            plays=FirestorePlayStore(rewards),
            slots=FirestoreBudgetSlots(rewards),
            campaigns=FirestoreCampaignStore(default),
            flags=FirestoreBudgetFlags(default),
            publisher=PubSubPlayPublisher(
                clients.publisher_api(), clients.topic_path(project, plays_topic)
            ),
            voided_orders=FirestoreVoidedOrders(rewards),
            signing_key=signing_key.encode(),
        ),
        vault=FirestoreRewardsVault(rewards),
        default_client=default,
        rewards_client=rewards,
    )


@functools.cache
def plays() -> tuple[RewardsComposition, Any]:
    """The ``plays`` function's: the game, and its API-key store."""
    from shared.platform import clients, logs
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.keys import CachedApiKeys
    from shared.system.settings import PlaysSettings

    settings = PlaysSettings()
    logs.configure(settings.log_level)
    built = build(
        settings.project, settings.rewards_database, settings.plays_topic, settings.signing_key
    )
    keys = CachedApiKeys(
        FirestoreApiKeyStore(clients.firestore_client(settings.project)),
        settings.api_key_cache_ttl_s,
    )
    return built, keys
