"""Builds the freezer's dependencies once per process (clients reused)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared import logs
from shared.freezer import DeadLetterSink, ReadModelSink
from shared.settings import FreezerSettings


@dataclass(frozen=True)
class FreezerDependencies:
    settings: FreezerSettings
    sink: ReadModelSink
    dead_letters: DeadLetterSink


@functools.cache
def dependencies() -> FreezerDependencies:
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
