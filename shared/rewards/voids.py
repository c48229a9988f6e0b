"""Cancelled and returned orders void their unpaid wins (pure part of ``void_plays``).

``void_batch`` reads a batch of ``shopper-events`` messages, skips every event but
``order_status_changed``, and voids (``game.void_order``) the wins of the orders cancelled
or returned, their budget slots freed. Idempotent: a redelivered batch changes nothing.
A message that is not a shopper event is dead-lettered with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.contract.events import EventType, OrderStatusChangedEvent
from shared.contract.messages import InboundMessage, PoisonMessage, parse
from shared.platform.sinks import DeadLetterSink
from shared.rewards.game import VOIDING_STATUSES, RewardsDependencies, void_order


def void_batch(
    batch: Sequence[InboundMessage], rewards: RewardsDependencies, dead_letters: DeadLetterSink
) -> int:
    """Void the wins of the orders cancelled or returned in the batch; how many plays."""
    poison: list[PoisonMessage] = []
    voided = 0
    for message in batch:
        kind = message.attributes.get("type")
        if kind is not None and kind != EventType.ORDER_STATUS_CHANGED.value:
            continue  # most of the stream: nothing to do with the game
        parsed = parse(message)
        if isinstance(parsed, str):
            poison.append(PoisonMessage.of(message, parsed))
            continue
        retailer_id, event, _ = parsed
        if isinstance(event, OrderStatusChangedEvent) and event.payload.status in VOIDING_STATUSES:
            voided += len(
                void_order(rewards, retailer_id, event.payload.order_id, event.occurred_at)
            )
    if poison:
        dead_letters.send(poison)
    return voided
