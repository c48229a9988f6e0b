"""A CloudEvent function for tests: appends every event it receives to a JSON-lines file."""

from __future__ import annotations

import json
import os
from typing import Any

import functions_framework


@functions_framework.cloud_event
def record_event(cloud_event: Any) -> None:
    record = {"attributes": dict(cloud_event.get_attributes()), "data": cloud_event.data}
    with open(os.environ["RECORD_EVENTS_FILE"], "a", encoding="utf-8") as sink:  # noqa: PTH123
        sink.write(json.dumps(record, default=str) + "\n")
    if cloud_event.data["message"].get("attributes", {}).get("fail") == "yes":
        raise RuntimeError("asked to fail, so that Pub/Sub redelivers")
