"""decide_events, push form: one Pub/Sub message per CloudEvent, the same service function.

The local stack runs the worker form (docs/DECISIONS.md says why); this entry point is what
``bench.decide --delivery push`` measures, and what a push subscription would call.
"""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.contract.messages import decode_push
from shared.decisions.composition import decider as dependencies
from shared.decisions.service import decide_batch


@functions_framework.cloud_event
def decide_event(cloud_event: Any) -> None:
    """Returns to acknowledge; a store failure raises so that Pub/Sub redelivers."""
    deps = dependencies()
    outcome = decide_batch([decode_push(cloud_event.data)], deps.service)
    if outcome.poison:
        deps.dead_letters.send(outcome.poison)
