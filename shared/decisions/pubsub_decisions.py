"""Pub/Sub adapter of the decider's ``DecisionPublisher``: decisions on ``shopper-experiences``."""

from __future__ import annotations

from collections.abc import Sequence

from shared.decisions.engine import Decision
from shared.decisions.service import decision_message
from shared.platform.pubsub_publish import SyncPublisher


class PubSubDecisionPublisher(SyncPublisher):
    """Every decision (shown or held out) on ``shopper-experiences``, once acknowledged."""

    def publish(self, decisions: Sequence[Decision]) -> None:
        self._publish([decision_message(d) for d in decisions])
