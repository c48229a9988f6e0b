"""decide_events, worker form: a pull loop on an ordered subscription, small batches.

Run: ``python -m functions.decide_events.worker``. Latency first: a batch is whatever is
waiting when the first messages arrive (no waiting to fill it). The batch is acknowledged
once its states are written and its decisions published; on a store failure it is
redelivered (a redelivered event changes nothing). Poison messages are dead-lettered.
"""

from __future__ import annotations

import logging
import threading

from shared.contract.messages import InboundMessage
from shared.decisions.composition import decider as dependencies
from shared.decisions.service import decide_batch
from shared.platform.errors import StoreUnavailableError
from shared.platform.pubsub_pull import main, serve
from shared.platform.sinks import TransientSinkError

log = logging.getLogger("decide_events.worker")


def _decide(batch: list[InboundMessage]) -> None:
    deps = dependencies()
    outcome = decide_batch(batch, deps.service)
    if outcome.poison:
        deps.dead_letters.send(outcome.poison)


def run(stop: threading.Event) -> None:
    from google.api_core.exceptions import GoogleAPIError

    settings = dependencies().settings
    serve(
        stop,
        project=settings.project,
        subscription=settings.subscription,
        heartbeat_file=settings.heartbeat_file,
        max_messages=settings.batch_max_messages,
        max_wait_s=0.0,  # latency first: no waiting to fill a batch
        process=_decide,
        transient=(StoreUnavailableError, TransientSinkError, GoogleAPIError),
        log=log,
        loops=settings.pull_loops,
    )


if __name__ == "__main__":
    main(run)
