"""The messages of the shopper-event stream, as every consumer receives them.

``ingest_events`` publishes one ``EventMessage`` per accepted event (docs/INGEST.md); each
consumer (freezer, decider, void_plays) gets it as an ``InboundMessage`` whatever the
transport (push or pull), reads it with ``parse`` and sets aside what it can never handle
as a ``PoisonMessage`` with its reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.contract.events import validate_event


class InboundMessage(BaseModel):
    """One message of the shopper-event topic, whatever the transport (push or pull)."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    data: bytes
    attributes: dict[str, str] = {}


class PoisonMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str
    reason: str
    data: bytes
    attributes: dict[str, str]

    @classmethod
    def of(cls, message: InboundMessage, reason: str) -> PoisonMessage:
        """``message`` set aside, as it came, with why it can never be handled."""
        return cls(
            message_id=message.message_id,
            reason=reason,
            data=message.data,
            attributes=message.attributes,
        )


class EventMessage(BaseModel):
    """What ``ingest_events`` publishes (docs/INGEST.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: str
    ingested_at: datetime
    event: dict[str, Any]


def parse(message: InboundMessage) -> tuple[str, Any, datetime] | str:
    """The (retailer, event, ingested_at) a message carries, or why it never will."""
    try:
        envelope = EventMessage.model_validate_json(message.data)
    except ValidationError as exc:
        return f"not a shopper-event message: {exc.errors(include_url=False)[0]['msg']}"
    outcome = validate_event(envelope.event)
    if isinstance(outcome, list):
        return "invalid event: " + "; ".join(f"{r.field}: {r.code}" for r in outcome)
    return envelope.retailer_id, outcome, envelope.ingested_at


def decode_push(body: dict[str, Any]) -> InboundMessage:
    """The message inside a Pub/Sub push (CloudEvent ``data``: ``{"message": {...}}``)."""
    import base64

    message = body["message"]
    return InboundMessage(
        message_id=str(message.get("messageId") or message.get("message_id")),
        data=base64.b64decode(message.get("data", "")),
        attributes=dict(message.get("attributes") or {}),
    )
