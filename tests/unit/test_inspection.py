"""What a rejected event leaves for inspection: never the personal data it was refused for."""

from __future__ import annotations

import json
import time

from shared.contract.events import validate_event
from shared.ingestion.inspection import SCRUBBED, kept_for_inspection, scrubbed
from tests.factories import event


def rejected(raw: dict[str, object]) -> object:
    reasons = validate_event(raw)
    assert isinstance(reasons, list), reasons
    return kept_for_inspection(raw, reasons)


def test_an_event_refused_for_personal_data_keeps_field_names_and_reasons_not_values() -> None:
    raw = event("page_viewed", "c-1", email="jane.doe@example.com", age="refused-age-value")
    kept = rejected(raw)
    text = json.dumps(kept)
    assert "jane.doe" not in text and "refused-age-value" not in text
    assert "/c/pasta" not in text
    assert isinstance(kept, dict)
    assert sorted(kept.pop("personal_data_removed")) == ["payload.age", "payload.email"]
    assert kept == {
        "event_id": raw["event_id"],
        "type": "page_viewed",
        "schema_version": 1,
        "session_id": "session-1",
        "occurred_at": raw["occurred_at"],
        "shopper_id": "c-1",  # the retailer's own identifier: an erasure finds the row
    }


def test_an_e_mail_as_the_shopper_id_is_not_kept_either() -> None:
    kept = rejected(event("page_viewed", "jane.doe@example.com"))
    assert "jane.doe" not in json.dumps(kept)
    assert kept["personal_data_removed"] == ["shopper_id"]  # type: ignore[index]


def test_other_rejections_stay_replayable_with_personal_looking_values_scrubbed() -> None:
    raw = event(
        "page_viewed", "c-1", loyalty_contact="jane.doe@example.com", hotline="+33 6 12 34 56 78"
    )
    kept = rejected(raw)
    assert kept["payload"]["loyalty_contact"] == SCRUBBED  # type: ignore[index]
    assert kept["payload"]["hotline"] == SCRUBBED  # type: ignore[index]
    assert kept["payload"]["url"] == "/c/pasta"  # type: ignore[index]
    assert kept["event_id"] == raw["event_id"]  # type: ignore[index]
    assert kept["payload"]["category"] == "PASTA"  # type: ignore[index]


def test_scrubbing_is_iterative_and_linear() -> None:
    deep: object = "x@y.co"
    for _ in range(5_000):  # deeper than any recursion limit
        deep = [deep]
    started = time.perf_counter()
    out = scrubbed(deep)
    for _ in range(5_000):
        assert isinstance(out, list)
        out = out[0]
    assert out == SCRUBBED
    wide = {f"k{i}": "a@" + "." * 300 for i in range(10_000)}  # over 254: no e-mail, no scan
    assert scrubbed(wide) == wide
    assert time.perf_counter() - started < 2.0
