"""The Shopper Event API on the local stack: every answer, and what reaches each store."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from google.cloud.bigtable.row_set import RowSet

from shared.ingestion.service import id_key, shopper_prefix
from shared.platform import clients
from shared.retailers.firestore_retailers import FirestoreRetailerRates
from shared.system.resources import (
    BIGTABLE_INSTANCE,
    EVENT_IDS_TABLE,
    REJECTED_EVENTS_TABLE,
    REJECTED_EVENTS_TOPIC,
    SHOPPER_EVENTS_TABLE,
    SHOPPER_EVENTS_TOPIC,
)
from tests.factories import PAYLOADS, event

pytestmark = pytest.mark.integration


class Tap:
    """A pull subscription on a topic, created for one test, read by event_id."""

    def __init__(self, project: str, topic: str, name: str) -> None:
        self.client = clients.subscriber_client()
        self.path = self.client.subscription_path(project, name)
        self.client.create_subscription(
            request={"name": self.path, "topic": f"projects/{project}/topics/{topic}"},
            timeout=10,
        )

    def collect(
        self,
        wanted: set[str],
        key: str = "event_id",
        wait_s: float = 10,
        everything: list[Any] | None = None,
    ) -> list[Any]:
        """Messages whose ``key`` is in ``wanted``: until all came and a pull finds nothing
        (every message pulled on the way is appended to ``everything``, if given)."""
        found: list[Any] = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            response = self.client.pull(
                request={
                    "subscription": self.path,
                    "max_messages": 1000,
                    "return_immediately": True,
                },
                timeout=5,
            )
            if response.received_messages:
                self.client.acknowledge(
                    subscription=self.path,
                    ack_ids=[m.ack_id for m in response.received_messages],
                )
            if everything is not None:
                everything += [m.message for m in response.received_messages]
            found += [
                m.message for m in response.received_messages if self._key(m.message, key) in wanted
            ]
            if not response.received_messages:
                if {self._key(m, key) for m in found} >= wanted:
                    break
                time.sleep(0.1)
        return found

    @staticmethod
    def _key(message: Any, key: str) -> str:
        if key in message.attributes:
            return str(message.attributes[key])
        return str(json.loads(message.data).get(key))

    def delete(self) -> None:
        self.client.delete_subscription(subscription=self.path, timeout=10)


@pytest.fixture
def events_tap(stack: dict[str, str], unique: str) -> Iterator[Tap]:
    tap = Tap(stack["GOOGLE_CLOUD_PROJECT"], SHOPPER_EVENTS_TOPIC, f"tap-{unique}")
    yield tap
    tap.delete()


@pytest.fixture
def rejected_tap(stack: dict[str, str], unique: str) -> Iterator[Tap]:
    tap = Tap(stack["GOOGLE_CLOUD_PROJECT"], REJECTED_EVENTS_TOPIC, f"rtap-{unique}")
    yield tap
    tap.delete()


def post(
    stack: dict[str, str],
    events: Any,
    *,
    api_key: str | None = None,
    content_type: str = "application/json",
    body: bytes | None = None,
) -> requests.Response:
    headers = {"Content-Type": content_type}
    key = stack["DEMO_API_KEY"] if api_key is None else api_key
    if key:
        headers["X-Api-Key"] = key
    data = body if body is not None else json.dumps({"events": events}).encode()
    return requests.post(f"{stack['INGEST_URL']}/v1/events", data=data, headers=headers, timeout=60)


def shopper_rows(stack: dict[str, str], retailer: str, shopper: str) -> list[Any]:
    instance = clients.bigtable_client(stack["GOOGLE_CLOUD_PROJECT"]).instance(BIGTABLE_INSTANCE)
    row_set = RowSet()
    row_set.add_row_range_with_prefix(shopper_prefix(retailer, shopper))
    return list(instance.table(SHOPPER_EVENTS_TABLE).read_rows(row_set=row_set))


def test_every_event_type_is_stored_and_published_with_ordering_and_attributes(
    stack: dict[str, str], unique: str, events_tap: Tap
) -> None:
    shopper = f"shopper-{unique}"
    events = [event(kind, shopper) for kind in PAYLOADS]
    response = post(stack, events)
    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": len(events),
        "duplicate_count": 0,
        "rejected_count": 0,
        "duplicates": [],
        "rejected": [],
    }
    rows = shopper_rows(stack, stack["DEMO_RETAILER_ID"], shopper)
    assert len(rows) == len(events)
    stored = {json.loads(r.cells["event"][b"message"][0].value)["event"]["event_id"] for r in rows}
    assert stored == {e["event_id"] for e in events}

    messages = events_tap.collect({e["event_id"] for e in events})
    assert sorted(m.attributes["event_id"] for m in messages) == sorted(
        e["event_id"] for e in events
    )
    for message in messages:
        body = json.loads(message.data)
        assert body["retailer_id"] == stack["DEMO_RETAILER_ID"]
        assert message.attributes["retailer_id"] == stack["DEMO_RETAILER_ID"]
        assert message.attributes["type"] == body["event"]["type"]
        assert message.attributes["schema_version"] == "1"
        assert body["ingested_at"]
        # The decider's ordered subscription relies on one ordering key per shopper.
        assert message.ordering_key == f"{stack['DEMO_RETAILER_ID']}#{shopper}"


def test_a_duplicate_is_stored_and_published_once_and_reported(
    stack: dict[str, str], unique: str, events_tap: Tap
) -> None:
    shopper = f"shopper-{unique}"
    first = event("product_added_to_basket", shopper)
    assert post(stack, [first]).json()["accepted"] == 1
    again = post(stack, [first, first])
    assert again.status_code == 202
    assert again.json()["accepted"] == 0
    assert again.json()["duplicates"] == [
        {"index": 0, "event_id": first["event_id"]},
        {"index": 1, "event_id": first["event_id"]},
    ]
    assert len(shopper_rows(stack, stack["DEMO_RETAILER_ID"], shopper)) == 1
    assert len(events_tap.collect({first["event_id"]})) == 1


def test_a_different_event_under_a_used_event_id_is_a_conflict(
    stack: dict[str, str], unique: str, events_tap: Tap
) -> None:
    shopper = f"shopper-{unique}"
    original = event("product_added_to_basket", shopper)
    assert post(stack, [original]).json()["accepted"] == 1
    reused = {**original, "payload": {**original["payload"], "quantity": 5}}
    body = post(stack, [reused]).json()
    assert body["accepted"] == 0
    assert body["rejected"] == [
        {
            "index": 0,
            "event_id": original["event_id"],
            "reasons": [
                {
                    "code": "event_id_conflict",
                    "field": "event_id",
                    "message": "this event_id was already used for a different event",
                }
            ],
        }
    ]
    assert len(events_tap.collect({original["event_id"]})) == 1


@pytest.mark.parametrize(
    ("where", "field"),
    [("payload", "email"), ("payload", "age"), ("envelope", "gender"), ("payload", "Birth_Date")],
)
def test_personal_data_is_refused_and_only_its_field_names_kept_for_inspection(
    stack: dict[str, str], unique: str, rejected_tap: Tap, where: str, field: str
) -> None:
    shopper = f"shopper-{unique}"
    bad = event("page_viewed", shopper)
    secret_value = f"refused-value-{unique}"  # what must be kept nowhere
    if where == "payload":
        bad["payload"][field] = secret_value
    else:
        bad[field] = secret_value
    good = event("search_performed", shopper)
    body = post(stack, [good, bad]).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    reason = body["rejected"][0]["reasons"][0]
    assert reason["code"] == "personal_data_refused"
    assert reason["field"].endswith(field)
    assert len(shopper_rows(stack, stack["DEMO_RETAILER_ID"], shopper)) == 1

    published = rejected_tap.collect({bad["event_id"]})
    assert len(published) == 1
    record = json.loads(published[0].data)
    assert record["reasons"][0]["code"] == "personal_data_refused"
    kept_raw = json.loads(record["raw"])
    assert kept_raw["event_id"] == bad["event_id"]
    # Field names and reasons only: not the refused value, nor any other value of the event.
    assert secret_value not in record["raw"] and "/c/pasta" not in record["raw"]
    assert kept_raw["personal_data_removed"][0].endswith(field)
    instance = clients.bigtable_client(stack["GOOGLE_CLOUD_PROJECT"]).instance(BIGTABLE_INSTANCE)
    row_set = RowSet()
    row_set.add_row_range_with_prefix(f"{stack['DEMO_RETAILER_ID']}#")
    kept = [
        r
        for r in instance.table(REJECTED_EVENTS_TABLE).read_rows(row_set=row_set, limit=50)
        if r.cells["rejected"][b"event_id"][0].value.decode() == bad["event_id"]
    ]
    assert len(kept) == 1
    assert secret_value not in kept[0].cells["rejected"][b"raw"][0].value.decode()


def test_unknown_fields_and_invalid_values_are_rejected_with_reasons(
    stack: dict[str, str], unique: str
) -> None:
    shopper = f"shopper-{unique}"
    unknown = event("page_viewed", shopper, loyalty_tier="gold")
    negative = event("product_added_to_basket", shopper, quantity=-1)
    future = event("page_viewed", shopper, occurred_at=datetime(2099, 1, 1, tzinfo=UTC))
    version = {**event("page_viewed", shopper), "schema_version": 7}
    body = post(stack, [unknown, negative, future, version, "not an event"]).json()
    assert body["accepted"] == 0
    codes = {r["index"]: [x["code"] for x in r["reasons"]] for r in body["rejected"]}
    assert codes == {
        0: ["extra_forbidden"],
        1: ["greater_than"],
        2: ["occurred_in_future"],
        3: ["unsupported_schema_version"],
        4: ["not_an_object"],
    }


def test_a_retailer_id_in_the_body_is_ignored(stack: dict[str, str], unique: str) -> None:
    shopper = f"shopper-{unique}"
    spoofed = {**event("page_viewed", shopper), "retailer_id": "another-retailer"}
    assert post(stack, [spoofed]).json()["accepted"] == 1
    assert len(shopper_rows(stack, stack["DEMO_RETAILER_ID"], shopper)) == 1
    assert shopper_rows(stack, "another-retailer", shopper) == []
    instance = clients.bigtable_client(stack["GOOGLE_CLOUD_PROJECT"]).instance(BIGTABLE_INSTANCE)
    ids = instance.table(EVENT_IDS_TABLE)
    assert ids.read_row(id_key(stack["DEMO_RETAILER_ID"], spoofed["event_id"]).encode())
    assert ids.read_row(id_key("another-retailer", spoofed["event_id"]).encode()) is None


def test_request_level_refusals(stack: dict[str, str]) -> None:
    one = [event()]
    cases = [
        (post(stack, one, api_key=""), 401, "unauthenticated"),
        (post(stack, one, api_key="cwk_unknown"), 401, "unauthenticated"),
        (post(stack, one, content_type="text/plain"), 415, "unsupported_media_type"),
        (post(stack, None, body=b"{not json"), 400, "invalid_json"),
        (post(stack, None, body=b'{"evts": []}'), 400, "invalid_request"),
        (post(stack, []), 400, "invalid_request"),
        (post(stack, [event() for _ in range(501)]), 413, "too_many_events"),
        (
            post(stack, None, body=b'{"events": ["' + b"x" * (1024 * 1024) + b'"]}'),
            413,
            "request_too_large",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert post(stack, [event() for _ in range(500)]).json()["accepted"] == 500


def test_a_retailer_over_its_rate_gets_429_with_retry_after(
    stack: dict[str, str], unique: str, retailer_key: Callable[[str], str]
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    retailer = f"slow-{unique}"
    firestore = clients.firestore_client(project)
    key = retailer_key(retailer)
    FirestoreRetailerRates(firestore, default_per_s=1).set(retailer, 10)
    # 10 events a second: two requests of 10 inside one second cannot both pass. Keep
    # sending until refused, however fast or slow the machine: each answer is counted in
    # the wall-clock second it was sent and answered in (the window is the server's second,
    # on this machine's clock); an answer that straddles two seconds is not counted.
    answers: list[tuple[int, int, requests.Response]] = []
    for _ in range(50):
        sent = math.floor(time.time())
        answer = post(stack, [event() for _ in range(10)], api_key=key)
        answers.append((sent, math.floor(time.time()), answer))
        if answer.status_code == 429:
            break
    statuses = [a.status_code for _, _, a in answers]
    assert statuses[0] == 202
    assert statuses[-1] == 429, statuses
    per_second: dict[int, int] = {}
    for sent, answered, answer in answers:
        if sent == answered and answer.status_code == 202:
            per_second[sent] = per_second.get(sent, 0) + 10
    assert all(events <= 10 for events in per_second.values()), per_second
    limited = answers[-1][2]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) == 1
    # Another retailer is not affected.
    assert post(stack, [event()]).status_code == 202


def test_openapi_and_json_schema_are_published(stack: dict[str, str]) -> None:
    spec = requests.get(f"{stack['INGEST_URL']}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]["/v1/events"]["post"]["responses"]) >= {
        "202",
        "400",
        "401",
        "413",
        "415",
        "429",
        "503",
    }
    schema = requests.get(
        f"{stack['INGEST_URL']}/v1/schemas/shopper-event/v1.json", timeout=10
    ).json()
    assert {m["$ref"].rsplit("/", 1)[1] for m in schema["oneOf"]} >= {"CartValidatedEvent"}
    assert "#/$defs/" not in json.dumps(spec)
    assert requests.get(f"{stack['INGEST_URL']}/nope", timeout=10).status_code == 404
    assert requests.get(f"{stack['INGEST_URL']}/v1/events", timeout=10).status_code == 405
