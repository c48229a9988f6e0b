"""recompile_trees, worker form: campaign changes into the retailers' default trees.

Run: ``python -m functions.recompile_trees.worker``. Pulls ``campaign-changes`` (its own
subscription), gathers a burst of changes for ``batch_max_wait_s``, and recompiles once the
default trees of every retailer they touch (``shared.decisions.recompile``); the batch is
acknowledged once the trees are written. A message that is not a campaign change is
dead-lettered with its reason; a store outage redelivers the batch.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from shared.contract.messages import InboundMessage
from shared.decisions.composition import tree_recompiler as dependencies
from shared.decisions.recompile import recompile_default_trees
from shared.platform.errors import StoreUnavailableError
from shared.platform.pubsub_pull import main, serve
from shared.platform.sinks import TransientSinkError

log = logging.getLogger("recompile_trees.worker")


def _process(batch: list[InboundMessage]) -> None:
    deps = dependencies()
    outcome = recompile_default_trees(
        batch, campaigns=deps.campaigns, trees=deps.trees, now=datetime.now(UTC)
    )
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
        max_wait_s=settings.batch_max_wait_s,
        process=_process,
        transient=(StoreUnavailableError, TransientSinkError, GoogleAPIError),
        log=log,
    )


if __name__ == "__main__":
    main(run)
