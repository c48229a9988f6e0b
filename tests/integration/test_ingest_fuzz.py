"""Fuzzing the live endpoint (hypothesis): no input, however malformed, gets a 5xx.

Bodies are drawn three ways: arbitrary bytes, arbitrary JSON, and valid events with one
part mutated (a field dropped, retyped or replaced by arbitrary JSON, nested or not).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import PAYLOADS, event

pytestmark = pytest.mark.integration

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    raw = event(draw(st.sampled_from(sorted(PAYLOADS))))
    target = raw if draw(st.booleans()) else raw["payload"]
    key = draw(st.sampled_from(sorted(target)) | st.text(min_size=1, max_size=12))
    action = draw(st.sampled_from(["drop", "replace"]))
    if action == "drop":
        target.pop(key, None)
    else:
        target[key] = draw(json_values)
    return raw


bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.lists(mutated_events(), min_size=1, max_size=5).map(
        lambda events: json.dumps({"events": events}).encode()
    )
    | st.lists(json_values, min_size=1, max_size=5).map(
        lambda events: json.dumps({"events": events}).encode()
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_no_malformed_body_gets_a_server_error(stack: dict[str, str], body: bytes) -> None:
    response = requests.post(
        f"{stack['INGEST_URL']}/v1/events",
        data=body,
        timeout=30,
        headers={"X-Api-Key": stack["DEMO_API_KEY"], "Content-Type": "application/json"},
    )
    assert response.status_code in {202, 400, 413}, (response.status_code, response.text)
    payload = response.json()
    if response.status_code == 202:
        assert payload["accepted"] + payload["rejected_count"] + payload["duplicate_count"] > 0
    else:
        assert payload["error"]["code"] and payload["error"]["message"]
