"""The decider's dependencies, built once per process (clients created on first use).

Shared by ``decide_events``'s two entry points (``functions/decide_events/worker.py`` and
``functions/decide_events/main.py``), so that both run the same service on the same
adapters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared.decisions.service import DecideDependencies
from shared.platform import logs
from shared.platform.sinks import DeadLetterSink
from shared.system.settings import DeciderSettings


@dataclass(frozen=True)
class DeciderComposition:
    settings: DeciderSettings
    service: DecideDependencies
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
