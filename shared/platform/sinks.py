"""What every stream consumer's sinks share: a transient failure, and the dead-letter port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.contract.messages import PoisonMessage


class TransientSinkError(RuntimeError):
    """The warehouse could not take the batch now: retry it, never drop it."""


class DeadLetterSink(Protocol):
    def send(self, poison: Sequence[PoisonMessage]) -> None: ...
