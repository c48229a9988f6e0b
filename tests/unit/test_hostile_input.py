"""Hostile input at the edge, on the pure code: each refusal with its reason, and no
pattern that backtracks (the same inputs against the running functions, with their
times: tests/integration/test_hostile_input.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.contract.events import (
    MAX_DEPTH,
    looks_like_email,
    nests_deeper_than,
    validate_event,
)
from shared.ingestion.api import IngestDependencies, events_in, parse_events, post_events
from shared.platform.http import Response, load_json
from shared.retailers.keys import ApiKey
from tests.factories import event
from tests.unit.test_ingest_service import MemoryPublisher, MemorySink, MemoryStore

# The pattern looks_like_email replaces: equal answers, without its quadratic backtracking.
BACKTRACKING_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@given(st.text(alphabet="a.@ \t-", max_size=12))
def test_the_email_check_answers_as_the_pattern_it_replaces(text: str) -> None:
    assert looks_like_email(text) == bool(BACKTRACKING_EMAIL.fullmatch(text))


def test_a_long_shopper_id_full_of_dots_is_refused_as_an_identifier() -> None:
    for shopper_id in ("." * 16_000, "a@" + "." * 16_000 + "@", "a@" + "." * 16_000):
        outcome = validate_event(event(shopper_id=shopper_id))
        assert isinstance(outcome, list)
        assert [r.field for r in outcome] == ["shopper_id"], outcome


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_an_event_nested_deeper_than_the_limit_is_refused_with_its_reason() -> None:
    assert not nests_deeper_than(event("cart_validated"), MAX_DEPTH)
    assert nests_deeper_than(nested(MAX_DEPTH + 1), MAX_DEPTH)
    raw = event()
    raw["payload"]["extra"] = nested(100_000)  # deeper than Python's recursion limit
    outcome = validate_event(raw)
    assert isinstance(outcome, list)
    assert [(r.code, r.field) for r in outcome] == [("too_deep", "")]


def test_a_body_nested_deeper_than_the_parser_goes_is_a_400_not_a_crash() -> None:
    body = b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    with pytest.raises(ValueError, match="nest too deep"):
        load_json(body)
    refusal = parse_events(body)
    assert isinstance(refusal, Response)
    assert refusal.status == 400 and refusal.body["error"]["code"] == "invalid_json"


def test_the_events_of_a_body_are_counted_before_it_is_parsed() -> None:
    events = [event() for _ in range(3)]
    events[0]["payload"]["label"] = 'a "event_id" in a string'
    body = json.dumps({"events": events}).encode()
    assert events_in(body) == 3
    assert events_in(b"not json at all") == 1
    assert events_in(b'"event_id"' * 10_000) == 500


class Refusing:
    """A rate limiter over its rate: every take waits."""

    def __init__(self) -> None:
        self.taken: list[int] = []

    def take(self, key: str, amount: int, rate_per_s: float) -> float:
        self.taken.append(amount)
        return 1.0


def test_the_rate_limit_is_applied_before_the_body_is_parsed() -> None:
    limiter = Refusing()

    class Keys:
        def put(self, key: ApiKey) -> None: ...

        def get(self, key_hash: str) -> ApiKey | None:
            return ApiKey(key_hash=key_hash, retailer_id="r1", created_at=datetime.now(UTC))

        def allows_origin(self, origin: str) -> bool:
            return False

    deps = IngestDependencies(
        store=MemoryStore(),
        publisher=MemoryPublisher(),
        rejected_sink=MemorySink(),
        api_keys=Keys(),
        rate_limit_per_s=lambda retailer: 10.0,
        rate_limiter=limiter,
    )
    headers = {"X-Api-Key": "cwk_test", "Content-Type": "application/json"}
    # Malformed, and deep: refused 429 without being parsed at all.
    answer = post_events(headers, b"[" * 100_000, deps)
    assert answer.status == 429, answer
    assert limiter.taken == [1]
