"""void_plays, worker form: a cancelled or returned order voids its unpaid wins.

Run: ``python -m functions.void_plays.worker``. Pulls ``shopper-events`` (its own
subscription), skips every event but ``order_status_changed``, and voids the wins of the
orders cancelled or returned (their budget slots freed); idempotent, so redeliveries are
harmless. A message that is not a shopper event is dead-lettered with its reason; a
store or topic outage redelivers the batch.
"""

from __future__ import annotations

import logging
import threading

from shared.contract.messages import InboundMessage
from shared.platform.pubsub_pull import main, serve
from shared.rewards.composition import void_plays as dependencies
from shared.rewards.voids import void_batch

log = logging.getLogger("void_plays.worker")


def _process(batch: list[InboundMessage]) -> None:
    deps = dependencies()
    voided = void_batch(batch, deps.rewards, deps.dead_letters)
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
