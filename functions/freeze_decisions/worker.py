"""freeze_decisions, worker form: decisions from ``shopper-experiences`` into BigQuery.

Run: ``python -m functions.freeze_decisions.worker``. Batches of up to 2,000 decisions,
one MERGE per table; acknowledged once written, redelivered on a transient error;
messages that are not decisions are dead-lettered with their reason.
"""

from __future__ import annotations

import logging
import threading

from shared.contract.messages import InboundMessage
from shared.decisions.composition import decision_freezer as dependencies
from shared.decisions.read_models import freeze_decisions
from shared.platform.pubsub_pull import main, serve
from shared.platform.sinks import TransientSinkError

log = logging.getLogger("freeze_decisions.worker")


def _freeze(batch: list[InboundMessage]) -> None:
    deps = dependencies()
    inserted = freeze_decisions(
        batch, sink=deps.sink, dead_letters=deps.dead_letters, privacy=deps.privacy
    )
    log.info("decisions frozen", extra={"messages": len(batch), "rows_inserted": inserted})


def run(stop: threading.Event) -> None:
    settings = dependencies().settings
    serve(
        stop,
        project=settings.project,
        subscription=settings.subscription,
        heartbeat_file=settings.heartbeat_file,
        max_messages=settings.batch_max_messages,
        max_wait_s=settings.batch_max_wait_s,
        process=_freeze,
        transient=(TransientSinkError,),
        log=log,
    )


if __name__ == "__main__":
    main(run)
