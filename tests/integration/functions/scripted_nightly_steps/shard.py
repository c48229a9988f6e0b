"""A scripted task of the nightly-shards job: tells the scripted step service it ran
(``POST {STEPS_URL}/steps/shards``), and fails (exit 1) when the service answers an error,
as a real task that crashed would."""

from __future__ import annotations

import os
import sys

import requests


def main() -> int:
    response = requests.post(
        f"{os.environ['STEPS_URL']}/steps/shards",
        json={
            "run_id": os.environ["NIGHTLY_RUN_ID"],
            "task": os.environ["CLOUD_RUN_TASK_INDEX"],
            "attempt": os.environ["CLOUD_RUN_TASK_ATTEMPT"],
            "skip_scoring": os.environ.get("NIGHTLY_SKIP_SCORING"),
        },
        timeout=30,
    )
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
