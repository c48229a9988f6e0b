from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.events import EventType, Rejection, event_json_schema, validate_event
from tests.factories import PAYLOADS, event


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_every_type_validates(kind: str) -> None:
    parsed = validate_event(event(kind))
    assert not isinstance(parsed, list), parsed
    assert parsed.type == EventType(kind)


def reasons(raw: Any) -> list[tuple[str, str]]:
    outcome = validate_event(raw)
    assert isinstance(outcome, list), outcome
    return [(r.code, r.field) for r in outcome]


def test_personal_data_is_found_at_any_depth_and_any_spelling() -> None:
    raw = event("cart_validated")
    raw["payload"]["lines"][1]["E-Mail"] = "a@b.c"
    raw["payload"]["lines"][0]["phone_number"] = "0600"
    assert reasons(raw) == [
        ("personal_data_refused", "payload.lines[0].phone_number"),
        ("personal_data_refused", "payload.lines[1].E-Mail"),
    ]


def test_shopper_id_must_not_be_an_email_and_must_be_an_identifier() -> None:
    assert reasons(event(shopper_id="someone@example.org")) == [("value_error", "shopper_id")]
    assert reasons(event(shopper_id="two words")) == [("string_pattern_mismatch", "shopper_id")]


def test_retailer_id_in_the_body_is_ignored() -> None:
    parsed = validate_event({**event(), "retailer_id": "other"})
    assert not isinstance(parsed, list)
    assert "retailer_id" not in parsed.model_dump()


def test_payload_errors_are_located_without_the_union_tag() -> None:
    raw = event("product_added_to_basket", quantity=0, unit_price="1.23456")
    assert reasons(raw) == [
        ("greater_than", "payload.quantity"),
        ("decimal_max_places", "payload.unit_price"),
    ]


def test_a_product_appears_on_one_order_line_only() -> None:
    raw = event("cart_validated")
    raw["payload"]["lines"][1]["product_id"] = "p-1"
    assert reasons(raw) == [("value_error", "payload.lines")]


def test_money_is_exact() -> None:
    parsed = validate_event(event("product_added_to_basket", unit_price=0.1))
    assert not isinstance(parsed, list)
    assert parsed.payload.unit_price == Decimal("0.1")  # type: ignore[union-attr]


def test_unknown_type_and_naive_time_are_refused() -> None:
    assert reasons({**event(), "type": "teleported"})[0][0] == "union_tag_invalid"
    assert ("timezone_aware", "occurred_at") in reasons(
        {**event(), "occurred_at": "2026-11-23T10:00:00"}
    )


def test_json_schema_covers_every_type() -> None:
    schema = event_json_schema()
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(schema["discriminator"]["mapping"]) == {t.value for t in EventType}
    assert Rejection(code="c", field="f", message="m").model_dump() == {
        "code": "c",
        "field": "f",
        "message": "m",
    }  # the shape every 202's "reasons" and the OpenAPI document promise
