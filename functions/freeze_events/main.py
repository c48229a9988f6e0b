"""freeze_events, push form: one Pub/Sub message per CloudEvent (the worker batches)."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.contract.messages import decode_push
from shared.freezer.composition import freezer as dependencies
from shared.freezer.service import freeze


@functions_framework.cloud_event
def freeze_event(cloud_event: Any) -> None:
    """Returns to acknowledge; a transient sink error raises so Pub/Sub redelivers."""
    deps = dependencies()
    freeze(
        [decode_push(cloud_event.data)],
        sink=deps.sink,
        dead_letters=deps.dead_letters,
        privacy=deps.privacy,
        late_window=deps.late_window,
    )
