"""The freezer's dependencies, built once per process.

Shared by ``freeze_events``'s two entry points (``functions/freeze_events/worker.py`` and
``functions/freeze_events/main.py``), so that both run the same service on the same adapters.
Clients are created on first use, never at import.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared.freezer.service import ReadModelSink
from shared.platform import logs
from shared.platform.sinks import DeadLetterSink
from shared.privacy_marks.marks import Gate
from shared.system.settings import FreezerSettings


@dataclass(frozen=True)
class FreezerDependencies:
    settings: FreezerSettings
    sink: ReadModelSink
    dead_letters: DeadLetterSink
    privacy: Gate


@functools.cache
def freezer() -> FreezerDependencies:
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS, READ_MODELS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout
    from shared.privacy_marks.bigtable_marks import privacy_gate

    settings = FreezerSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    sink = BigQueryReadModelSink(
        bigquery, settings.project, (*READ_MODELS, DEAD_LETTERS), settings.bigquery_retry_s
    )
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
        privacy=privacy_gate(settings),
    )
