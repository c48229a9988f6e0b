"""The nightly-shards job's task, crashing once: task 1's first attempt writes two of its
trees and then dies (``os._exit``, as a killed container would: no cleanup, no record of
success); every other attempt is the real task (``functions.nightly_shards.job``)."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterable
from typing import Any

from functions.nightly_shards import job
from shared.nightly.composition import nightly_steps


class _CrashMidway:
    def __init__(self, trees: Any) -> None:
        self._trees = trees

    def put_many(self, trees: Iterable[Any], batch_size: int) -> int:
        self._trees.put_many(itertools.islice(iter(trees), 2), batch_size)
        os._exit(1)


def main() -> int:
    if os.environ["CLOUD_RUN_TASK_INDEX"] == "1" and os.environ["CLOUD_RUN_TASK_ATTEMPT"] == "0":
        deps = nightly_steps()
        deps.trees = _CrashMidway(deps.trees)
    return job.main()


if __name__ == "__main__":
    sys.exit(main())
