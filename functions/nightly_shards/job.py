"""nightly_shards: one task of the Cloud Run job. Parse, call, exit.

Run: ``python -m functions.nightly_shards.job`` with ``CLOUD_RUN_TASK_INDEX``,
``CLOUD_RUN_TASK_COUNT`` (set by Cloud Run; locally by the job stand-in of the workflows
emulator) and ``NIGHTLY_RUN_ID`` (the workflow's override). The task scores its hash
shard of shoppers and compiles their personal trees (``shared.nightly.service.run_shard``);
exit 0 when done, 1 on failure: Cloud Run then retries this task alone.
"""

from __future__ import annotations

import logging
import sys

from shared.nightly.composition import nightly_shard

log = logging.getLogger("nightly_shards.job")


def main() -> int:
    try:
        summary = nightly_shard()
    except Exception:
        log.exception("nightly shard failed")
        return 1
    log.info("nightly shard done", extra={"summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
