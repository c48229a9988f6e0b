"""void_plays, worker form: a cancelled or returned order voids its unpaid wins.

Run: ``python -m functions.void_plays.worker``. Pulls ``shopper-events`` (its own
subscription), skips every event but ``order_status_changed``, and voids the wins of the
orders cancelled or returned (their budget slots freed); idempotent, so redeliveries are
harmless. A message that is not a shopper event is dead-lettered with its reason; a
store or topic outage redelivers the batch.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass

from shared.contract.events import EventType, OrderStatusChangedEvent
from shared.contract.messages import InboundMessage, PoisonMessage, parse
from shared.platform import logs
from shared.platform.pubsub_pull import main, serve
from shared.platform.sinks import DeadLetterSink, TransientSinkError
from shared.rewards.game import (
    VOIDING_STATUSES,
    RewardsDependencies,
    TransientVoidError,
    void_order,
)
from shared.system.settings import VoidPlaysSettings

log = logging.getLogger("void_plays.worker")


@dataclass(frozen=True)
class VoidPlays:
    settings: VoidPlaysSettings
    rewards: RewardsDependencies
    dead_letters: DeadLetterSink
    transient: tuple[type[Exception], ...]


@functools.cache
def dependencies() -> VoidPlays:
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS
    from shared.platform import clients
    from shared.platform.pubsub_dead_letters import DeadLetterFanout
    from shared.rewards import composition as rewards_composition

    settings = VoidPlaysSettings()
    logs.configure(settings.log_level)
    built = rewards_composition.build(
        settings.project, settings.rewards_database, settings.plays_topic, signing_key=""
    )
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
            *rewards_composition.unavailable_errors(),
        ),
    )


def void_batch(batch: list[InboundMessage], deps: VoidPlays) -> int:
    """Void the wins of the orders cancelled or returned in the batch; how many plays."""
    poison: list[PoisonMessage] = []
    voided = 0
    for message in batch:
        kind = message.attributes.get("type")
        if kind is not None and kind != EventType.ORDER_STATUS_CHANGED.value:
            continue  # most of the stream: nothing to do with the game
        parsed = parse(message)
        if isinstance(parsed, str):
            poison.append(
                PoisonMessage(
                    message_id=message.message_id,
                    reason=parsed,
                    data=message.data,
                    attributes=message.attributes,
                )
            )
            continue
        retailer_id, event, _ = parsed
        if isinstance(event, OrderStatusChangedEvent) and event.payload.status in VOIDING_STATUSES:
            voided += len(
                void_order(deps.rewards, retailer_id, event.payload.order_id, event.occurred_at)
            )
    if poison:
        deps.dead_letters.send(poison)
    return voided


def _process(batch: list[InboundMessage]) -> None:
    voided = void_batch(batch, dependencies())
    if voided:
        log.info("plays voided", extra={"messages": len(batch), "voided": voided})


def run(stop: threading.Event) -> None:
    deps = dependencies()
    settings = deps.settings
    serve(
        stop,
        project=settings.project,
        subscription=settings.subscription,
        heartbeat_file=settings.heartbeat_file,
        max_messages=settings.batch_max_messages,
        max_wait_s=settings.batch_max_wait_s,
        process=_process,
        transient=deps.transient,
        log=log,
    )


if __name__ == "__main__":
    main(run)
