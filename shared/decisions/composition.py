"""The composition root of the decisions: ``decide_events``, ``experiences``, ``freeze_decisions``.

``decider()`` builds the dependencies of ``decide_events``'s two entry points
(``functions/decide_events/worker.py`` and ``functions/decide_events/main.py``), so that
both run the same service on the same adapters; ``experiences()`` those of
``functions/experiences/main.py``; ``decision_freezer()`` those of
``functions/freeze_decisions/worker.py``; ``tree_recompiler()`` those of
``functions/recompile_trees/worker.py``. Each is built once per process, its clients
created on first use, never at import.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared.decisions.experiences_api import ExperiencesDependencies
from shared.decisions.recompile import ActiveCampaigns, DefaultTrees
from shared.decisions.service import DecideDependencies
from shared.freezer.service import ReadModelSink
from shared.platform import logs
from shared.platform.sinks import DeadLetterSink
from shared.privacy_marks.marks import Gate
from shared.retailers.keys import CachedApiKeys
from shared.system.settings import (
    DeciderSettings,
    DecisionFreezerSettings,
    ExperiencesSettings,
    RecompileTreesSettings,
)


@dataclass(frozen=True)
class DeciderComposition:
    settings: DeciderSettings
    service: DecideDependencies
    dead_letters: DeadLetterSink


@dataclass(frozen=True)
class DecisionFreezer:
    settings: DecisionFreezerSettings
    sink: ReadModelSink
    dead_letters: DeadLetterSink
    privacy: Gate


@dataclass(frozen=True)
class TreeRecompiler:
    settings: RecompileTreesSettings
    campaigns: ActiveCampaigns
    trees: DefaultTrees
    dead_letters: DeadLetterSink


@functools.cache
def decider() -> DeciderComposition:
    from shared.campaigns.firestore_campaigns import FirestoreBudgetGate
    from shared.decisions.bigtable_state import BigtableShopperStates, BigtableTrees
    from shared.decisions.pubsub_decisions import PubSubDecisionPublisher
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout
    from shared.privacy_marks.bigtable_marks import privacy_gate

    settings = DeciderSettings()
    logs.configure(settings.log_level)
    bigtable = clients.bigtable_client(
        settings.project, app_profile_id=settings.bigtable_app_profile
    )
    publisher = clients.publisher_api()
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    return DeciderComposition(
        settings=settings,
        service=DecideDependencies(
            states=BigtableShopperStates(bigtable, settings.bigtable_instance),
            trees=BigtableTrees(
                bigtable, settings.bigtable_instance, ttl_s=settings.default_tree_ttl_s
            ),
            publisher=PubSubDecisionPublisher(
                publisher, clients.topic_path(settings.project, settings.experiences_topic)
            ),
            budgets=FirestoreBudgetGate(
                clients.firestore_client(settings.project), ttl_s=settings.budget_ttl_s
            ),
            signing_key=settings.signing_key.encode(),
            privacy=privacy_gate(settings, bigtable),
        ),
        dead_letters=DeadLetterFanout(
            publisher,
            clients.topic_path(settings.project, settings.dead_letter_topic),
            BigQueryReadModelSink(bigquery, settings.project, (DEAD_LETTERS,)),
            DEAD_LETTERS.name,
            source="decider",
        ),
    )


@functools.cache
def experiences() -> ExperiencesDependencies:
    """The ``experiences`` function's: its API-key store and the shoppers' live states."""
    from shared.decisions.bigtable_state import BigtableShopperStates
    from shared.platform import clients
    from shared.privacy_marks.bigtable_marks import privacy_gate
    from shared.retailers.access import Identity
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.firestore_retailers import FirestoreIdentityVersions

    settings = ExperiencesSettings()
    logs.configure(settings.log_level)
    firestore = clients.firestore_client(settings.project)
    bigtable = clients.bigtable_client(
        settings.project, app_profile_id=settings.bigtable_app_profile
    )
    return ExperiencesDependencies(
        api_keys=CachedApiKeys(
            FirestoreApiKeyStore(
                clients.firestore_client(settings.project, settings.credentials_database)
            ),
            settings.api_key_cache_ttl_s,
        ),
        experiences=BigtableShopperStates(bigtable, settings.bigtable_instance),
        privacy=privacy_gate(settings, bigtable),
        identity=Identity(
            settings.identity_key,
            FirestoreIdentityVersions(firestore, settings.identity_cache_ttl_s),
        ),
        max_wait_ms=settings.max_wait_ms,
        poll_s=settings.wait_poll_ms / 1000,
    )


@functools.cache
def decision_freezer() -> DecisionFreezer:
    """The ``freeze_decisions`` worker's: the BigQuery decision tables and dead letters."""
    from shared.decisions.read_models import DECISION_TABLES
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout
    from shared.privacy_marks.bigtable_marks import privacy_gate

    settings = DecisionFreezerSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    sink = BigQueryReadModelSink(bigquery, settings.project, (*DECISION_TABLES, DEAD_LETTERS))
    return DecisionFreezer(
        settings=settings,
        sink=sink,
        dead_letters=DeadLetterFanout(
            clients.publisher_api(),
            clients.topic_path(settings.project, settings.dead_letter_topic),
            sink,
            DEAD_LETTERS.name,
            source="decision-freezer",
        ),
        privacy=privacy_gate(settings),
    )


@functools.cache
def tree_recompiler() -> TreeRecompiler:
    """The ``recompile_trees`` worker's: active campaigns, default trees, dead letters."""
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.decisions.bigtable_state import BigtableTrees
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout

    settings = RecompileTreesSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    return TreeRecompiler(
        settings=settings,
        campaigns=FirestoreCampaignStore(clients.firestore_client(settings.project)),
        trees=BigtableTrees(
            clients.bigtable_client(settings.project, app_profile_id=settings.bigtable_app_profile),
            settings.bigtable_instance,
        ),
        dead_letters=DeadLetterFanout(
            clients.publisher_api(),
            clients.topic_path(settings.project, settings.dead_letter_topic),
            BigQueryReadModelSink(bigquery, settings.project, (DEAD_LETTERS,)),
            DEAD_LETTERS.name,
            source="recompile-trees",
        ),
    )
