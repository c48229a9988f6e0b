"""The pull workers' and push functions' dependencies, built once per process.

Shared by each event processor's two entry points (``functions/<name>/worker.py`` and
``functions/<name>/main.py``), so that both run the same service on the same adapters.
Clients are created on first use, never at import.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared import logs
from shared.decide_service import DecideDependencies
from shared.freezer import DeadLetterSink, ReadModelSink
from shared.settings import DeciderSettings, FreezerSettings


@dataclass(frozen=True)
class FreezerDependencies:
    settings: FreezerSettings
    sink: ReadModelSink
    dead_letters: DeadLetterSink


@functools.cache
def freezer() -> FreezerDependencies:
    from shared.adapters import clients
    from shared.adapters.bigquery_read_models import BigQueryReadModelSink
    from shared.adapters.dead_letters import DeadLetterFanout
    from shared.read_models import DEAD_LETTERS, READ_MODELS

    settings = FreezerSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    sink = BigQueryReadModelSink(bigquery, settings.project, (*READ_MODELS, DEAD_LETTERS))
    publisher = clients.publisher_api()
    return FreezerDependencies(
        settings=settings,
        sink=sink,
        dead_letters=DeadLetterFanout(
            publisher,
            clients.topic_path(settings.project, settings.dead_letter_topic),
            sink,
            DEAD_LETTERS.name,
            source="freezer",
        ),
    )


@dataclass(frozen=True)
class DeciderComposition:
    settings: DeciderSettings
    service: DecideDependencies
    dead_letters: DeadLetterSink


@functools.cache
def decider() -> DeciderComposition:
    from shared.adapters import clients
    from shared.adapters.bigquery_read_models import BigQueryReadModelSink
    from shared.adapters.bigtable_decisions import BigtableShopperStates, BigtableTrees
    from shared.adapters.dead_letters import DeadLetterFanout
    from shared.adapters.firestore_campaigns import FirestoreBudgetGate
    from shared.adapters.pubsub_publisher import PubSubDecisionPublisher
    from shared.read_models import DEAD_LETTERS

    settings = DeciderSettings()
    logs.configure(settings.log_level)
    bigtable = clients.bigtable_client(settings.project)
    publisher = clients.publisher_api()
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    return DeciderComposition(
        settings=settings,
        service=DecideDependencies(
            states=BigtableShopperStates(bigtable, settings.bigtable_instance),
            trees=BigtableTrees(bigtable, settings.bigtable_instance),
            publisher=PubSubDecisionPublisher(
                publisher, clients.topic_path(settings.project, settings.experiences_topic)
            ),
            budgets=FirestoreBudgetGate(clients.firestore_client(settings.project)),
            signing_key=settings.signing_key.encode(),
        ),
        dead_letters=DeadLetterFanout(
            publisher,
            clients.topic_path(settings.project, settings.dead_letter_topic),
            BigQueryReadModelSink(bigquery, settings.project, (DEAD_LETTERS,)),
            DEAD_LETTERS.name,
            source="decider",
        ),
    )
