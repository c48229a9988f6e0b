"""Hostile input sent to the running functions: each gets its clear refusal, in time
linear in its size.

The times are checked against bounds hundreds of times above what a linear answer takes
here and far below what the inputs cost before (a 16,000-dot shopper id between two
``@`` took 1.7 s to check, growing with the square of its length: the 600,000-character
one below would take about 40 minutes); each is printed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest
import requests

from shared.platform import clients
from shared.retailers.firestore_retailers import FirestoreRetailerRates
from tests.factories import event
from tests.integration.test_ingest_api import post

pytestmark = pytest.mark.integration

# A linear answer to the inputs below takes well under a second here.
LINEAR_BOUND_S = 10.0


def timed(send: Callable[[], requests.Response], what: str) -> requests.Response:
    started = time.perf_counter()
    answer = send()
    elapsed = time.perf_counter() - started
    print(f"{what}: {answer.status_code} in {elapsed * 1000:.0f} ms")
    assert elapsed < LINEAR_BOUND_S, (what, elapsed)
    return answer


def test_a_shopper_id_made_to_backtrack_is_refused_with_its_reason_in_linear_time(
    stack: dict[str, str],
) -> None:
    hostile = event(shopper_id="a@" + "." * 600_000 + "@")
    answer = timed(lambda: post(stack, [hostile]), "600,000-character shopper id")
    assert answer.status_code == 202, answer.text
    rejected = answer.json()["rejected"]
    assert [r["field"] for r in rejected[0]["reasons"]] == ["shopper_id"], rejected


def test_nesting_beyond_the_parser_or_the_contract_is_a_400_or_a_rejection_not_a_500(
    stack: dict[str, str],
) -> None:
    depth = 400_000
    body = b'{"events": [' + b"[" * depth + b"]" * depth + b"]}"
    answer = timed(lambda: post(stack, None, body=body), f"body nested {depth} deep")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_json"
    assert "nest too deep" in answer.json()["error"]["message"]

    deep = event()
    deep["payload"]["extra"] = json.loads("[" * 500 + "]" * 500)
    answer = timed(lambda: post(stack, [deep]), "event nested 500 deep")
    assert answer.status_code == 202, answer.text
    reasons = answer.json()["rejected"][0]["reasons"]
    assert [r["code"] for r in reasons] == ["too_deep"], reasons

    for name, url in (
        ("campaigns", f"{stack['CAMPAIGNS_URL']}/v1/campaigns"),
        ("plays", f"{stack['PLAYS_URL']}/v1/plays"),
        ("erasure", f"{stack['ERASURE_URL']}/v1/erasure-requests"),
    ):
        answer = timed(
            lambda url=url: requests.post(  # type: ignore[misc]
                url,
                data=b"[" * 3_000,  # under every limit, past the parser's depth
                headers={"Content-Type": "application/json", "X-Api-Key": stack["DEMO_API_KEY"]},
                timeout=30,
            ),
            f"{name}: body nested 3,000 deep",
        )
        assert answer.status_code in {400, 401}, (name, answer.status_code, answer.text)
        assert "error" in answer.json(), (name, answer.text)


def test_bodies_over_each_functions_limit_are_refused_before_they_are_read_whole(
    stack: dict[str, str],
) -> None:
    big = b"x" * (4 * 1024 * 1024)
    for name, url in (
        ("ingest", f"{stack['INGEST_URL']}/v1/events"),
        ("campaigns", f"{stack['CAMPAIGNS_URL']}/v1/campaigns"),
        ("nightly steps", f"{stack['NIGHTLY_STEPS_URL']}/runs"),
        ("plays", f"{stack['PLAYS_URL']}/v1/plays"),
        ("erasure", f"{stack['ERASURE_URL']}/v1/erasure-requests"),
    ):
        answer = timed(
            lambda url=url: requests.post(  # type: ignore[misc]
                url,
                data=big,
                headers={"Content-Type": "application/json", "X-Api-Key": stack["DEMO_API_KEY"]},
                timeout=60,
            ),
            f"{name}: 4 MiB body",
        )
        assert answer.status_code == 413, (name, answer.status_code, answer.text[:200])
        assert "error" in answer.json(), name


def test_the_rate_limit_holds_before_any_parsing(
    stack: dict[str, str], unique: str, retailer_key: Callable[[str], str]
) -> None:
    """A retailer over its rate is refused 429 even for bodies that would cost a parse
    (here: malformed ones, which were answered 400 after being parsed)."""
    retailer = f"hostile-{unique}"
    key = retailer_key(retailer)
    FirestoreRetailerRates(clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"]), 1).set(
        retailer, 1
    )
    statuses = [
        post(
            stack, None, api_key=key, body=b'{"events": [{"event_id": ' + b"[" * 50_000
        ).status_code
        for _ in range(5)
    ]
    assert statuses[0] == 400, statuses  # within the rate: parsed, and refused for what it is
    assert 429 in statuses[1:], statuses


def test_a_flood_of_unknown_keys_is_refused_and_the_real_key_still_served(
    stack: dict[str, str],
) -> None:
    started = time.perf_counter()
    statuses = {
        post(stack, [event()], api_key=f"cwk_{uuid.uuid4().hex}").status_code for _ in range(300)
    }
    print(f"300 unknown keys in {time.perf_counter() - started:.1f} s")
    assert statuses == {401}
    assert post(stack, [event()]).status_code == 202
