"""The composition root of the rewards game: ``plays``, ``void_plays``, ``freeze_plays``.

``plays()`` builds ``functions/plays/main.py``'s dependencies, ``void_plays()``
``functions/void_plays/worker.py``'s and ``play_freezer()``
``functions/freeze_plays/worker.py``'s, each once per process (settings read, clients
created on first use, never at import); ``build`` wires the game's stores, also for
``ledger_cli`` and ``bench/rewards.py``. This module reaches the rewards vault (e-mail
addresses): the ingestion, freezing, decision and training code paths never import it
(tests/unit/test_privacy_imports.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from shared.platform import logs
from shared.platform.sinks import DeadLetterSink
from shared.privacy_marks.marks import Gate
from shared.rewards.api import PlaysDependencies
from shared.rewards.game import RewardsDependencies, RewardsVault
from shared.rewards.play_freezer import PlaySink
from shared.system.settings import PlayFreezerSettings, VoidPlaysSettings


@dataclass(frozen=True)
class RewardsComposition:
    rewards: RewardsDependencies
    vault: RewardsVault
    default_client: Any
    rewards_client: Any


@dataclass(frozen=True)
class VoidPlays:
    settings: VoidPlaysSettings
    rewards: RewardsDependencies
    dead_letters: DeadLetterSink
    transient: tuple[type[Exception], ...]


@dataclass(frozen=True)
class PlayFreezer:
    settings: PlayFreezerSettings
    sink: PlaySink
    dead_letters: DeadLetterSink
    privacy: Gate


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
def plays() -> PlaysDependencies:
    """The ``plays`` function's: the game, its vault and its API-key store."""
    from shared.platform import clients
    from shared.privacy_marks.bigtable_marks import privacy_gate
    from shared.retailers.access import Identity
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.firestore_retailers import FirestoreIdentityVersions
    from shared.retailers.keys import CachedApiKeys
    from shared.system.settings import PlaysSettings

    settings = PlaysSettings()
    logs.configure(settings.log_level)
    built = build(
        settings.project, settings.rewards_database, settings.plays_topic, settings.signing_key
    )
    firestore = clients.firestore_client(settings.project)
    credentials = clients.firestore_client(settings.project, settings.credentials_database)
    keys = CachedApiKeys(FirestoreApiKeyStore(credentials), settings.api_key_cache_ttl_s)
    return PlaysDependencies(
        api_keys=keys,
        identity=Identity(
            settings.identity_key,
            FirestoreIdentityVersions(firestore, settings.identity_cache_ttl_s),
        ),
        rewards=built.rewards,
        vault=built.vault,
        privacy=privacy_gate(settings),
        unavailable=unavailable_errors(),
    )


@functools.cache
def void_plays() -> VoidPlays:
    """The ``void_plays`` worker's: the game (no signing key: it never issues a token)."""
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout
    from shared.platform.sinks import TransientSinkError
    from shared.rewards.game import TransientVoidError

    settings = VoidPlaysSettings()
    logs.configure(settings.log_level)
    built = build(settings.project, settings.rewards_database, settings.plays_topic, signing_key="")
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    return VoidPlays(
        settings=settings,
        rewards=built.rewards,
        dead_letters=DeadLetterFanout(
            clients.publisher_api(),
            clients.topic_path(settings.project, settings.dead_letter_topic),
            BigQueryReadModelSink(bigquery, settings.project, (DEAD_LETTERS,)),
            DEAD_LETTERS.name,
            source="void-plays",
        ),
        transient=(
            TransientSinkError,
            TransientVoidError,
            *unavailable_errors(),
        ),
    )


@functools.cache
def play_freezer() -> PlayFreezer:
    """The ``freeze_plays`` worker's: the BigQuery ``plays`` sink and its dead letters."""
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout
    from shared.privacy_marks.bigtable_marks import privacy_gate
    from shared.rewards.bigquery_plays import BigQueryPlaySink

    settings = PlayFreezerSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    return PlayFreezer(
        settings=settings,
        sink=BigQueryPlaySink(bigquery, settings.project),
        dead_letters=DeadLetterFanout(
            clients.publisher_api(),
            clients.topic_path(settings.project, settings.dead_letter_topic),
            BigQueryReadModelSink(bigquery, settings.project, (DEAD_LETTERS,)),
            DEAD_LETTERS.name,
            source="play-freezer",
        ),
        privacy=privacy_gate(settings),
    )
