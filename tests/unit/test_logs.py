from __future__ import annotations

import json
import logging

from shared.platform.logs import JsonFormatter, correlation_id


def test_json_log_line_carries_severity_message_extras_and_correlation() -> None:
    record = logging.LogRecord("cartwise.x", logging.WARNING, __file__, 1, "hello %s", ("w",), None)
    record.retailer_id = "r1"
    token = correlation_id.set("req-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        correlation_id.reset(token)
    assert line["severity"] == "WARNING"
    assert line["message"] == "hello w"
    assert line["retailer_id"] == "r1"
    assert line["logging.googleapis.com/labels"] == {"correlation_id": "req-1"}
