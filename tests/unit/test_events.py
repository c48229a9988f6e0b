from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from shared.contract.events import (
    EventType,
    Rejection,
    canonical_json,
    event_json_schema,
    is_personal_field,
    validate_event,
    validate_request_json,
)
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
    assert reasons(event(shopper_id="someone@example.org")) == [
        ("personal_data_refused", "shopper_id")
    ]
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


def _field_names(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        names = set(schema.get("properties", {}))
        return names.union(*(_field_names(child) for child in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_field_names(child) for child in schema))
    return set()


def test_no_contract_field_is_a_personal_data_field() -> None:
    # What makes the one-pass validation of a whole body safe: a body that validates
    # cannot carry an identity field, since every model forbids unknown fields.
    names = _field_names(event_json_schema())
    assert {"event_id", "shopper_id", "unit_price", "lines"} <= names
    assert not [name for name in names if is_personal_field(name)]


def test_a_body_validates_in_one_pass_only_when_every_event_is_valid() -> None:
    events = [event(kind) for kind in PAYLOADS]
    valid = validate_request_json(json.dumps({"events": events}).encode())
    assert valid is not None
    assert [e.type.value for e in valid] == list(PAYLOADS)
    for spoiled in ({**events[0], "age": 30}, {**events[0], "retailer_id": "r2"}, {}):
        body = json.dumps({"events": [*events, spoiled]}).encode()
        assert validate_request_json(body) is None
    assert validate_request_json(b'{"events": []}') is None
    assert validate_request_json(b"not json") is None


def test_equal_events_have_equal_canonical_json_whatever_their_spelling() -> None:
    raw = event("cart_validated")
    respelled = json.loads(json.dumps(raw))
    respelled["event_id"] = raw["event_id"].upper()
    respelled["shopper_id"] = f"  {raw['shopper_id']} "
    respelled["payload"]["total"] = 4.480
    respelled["payload"]["lines"][0]["discount"] = "0.5000"
    respelled = dict(reversed(list(respelled.items())))  # another key order
    one_pass = validate_request_json(json.dumps({"events": [respelled]}).encode())
    per_event = validate_event(raw)
    assert one_pass is not None and not isinstance(per_event, list)
    assert canonical_json(one_pass[0]) == canonical_json(per_event)
    assert b'"total":"4.48"' in canonical_json(per_event)
    assert b'"discount":"0.5"' in canonical_json(per_event)
