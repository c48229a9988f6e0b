"""Plays from the ``plays`` topic into the BigQuery ``plays`` table (pure part).

Each message carries one play's current state (``shared.rewards.game.play_row``). A play's
state only ever moves forward (won -> voided, or won -> paid), so rows of one play are
combined monotonically — ``voided``/``paid`` once true stay true, the first ``voided_at``
stays — and the order messages arrive in does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from shared.contract.messages import InboundMessage, PoisonMessage
from shared.platform.sinks import DeadLetterSink
from shared.privacy_marks.marks import Gate, OpenGate


class PlayRow(BaseModel):
    """A row of the ``plays`` table (shared/rewards/read_models.py); no e-mail field exists."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    play_id: str
    retailer_id: str
    shopper_id: str
    campaign_id: str
    order_id: str
    played_at: AwareDatetime
    won: bool
    prize_value: Decimal
    voided: bool
    voided_at: AwareDatetime | None
    paid: bool


class PlaySink(Protocol):
    def write(self, rows: Sequence[dict[str, Any]]) -> int:
        """Upsert the rows (one per play_id); how many were inserted or updated."""
        ...


def combine(first: PlayRow, second: PlayRow) -> PlayRow:
    moments = [m for m in (first.voided_at, second.voided_at) if m is not None]
    voided_at: datetime | None = min(moments) if moments else None
    return first.model_copy(
        update={
            "voided": first.voided or second.voided,
            "voided_at": voided_at,
            "paid": first.paid or second.paid,
        }
    )


def transform_plays(
    messages: Sequence[InboundMessage], privacy: Gate | None = None
) -> tuple[list[dict[str, Any]], list[PoisonMessage]]:
    """One row per play (combined), and the messages that are not plays. With
    ``privacy``, a play a privacy mark blocks (an objected shopper's; an erased shopper's
    played before the erasure) yields no row."""
    rows: dict[str, PlayRow] = {}
    poison: list[PoisonMessage] = []
    for message in messages:
        try:
            row = PlayRow.model_validate_json(message.data)
        except ValidationError as exc:
            poison.append(
                PoisonMessage.of(message, f"not a play: {exc.errors(include_url=False)[0]['msg']}")
            )
            continue
        known = rows.get(row.play_id)
        rows[row.play_id] = row if known is None else combine(known, row)
    kept = list(rows.values())
    gate = privacy or OpenGate()
    blocked = gate.blocked([(r.retailer_id, r.shopper_id, r.played_at) for r in kept])
    return [
        r.model_dump(mode="json") for r, drop in zip(kept, blocked, strict=True) if not drop
    ], poison


def freeze_plays(
    messages: Sequence[InboundMessage],
    *,
    sink: PlaySink,
    dead_letters: DeadLetterSink,
    privacy: Gate,
) -> int:
    """Freeze one batch of plays (one MERGE on play_id); how many rows were written.

    The messages that are not plays are dead-lettered with their reason; a sink failure
    raises ``TransientSinkError`` to have the whole batch redelivered.
    """
    rows, poison = transform_plays(messages, privacy)
    if poison:
        dead_letters.send(poison)
    return sink.write(rows) if rows else 0
