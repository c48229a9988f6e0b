"""Bigtable fails under ingest: the API answers 503 and reports nothing accepted; the
retry lands once; an event published but not indexed when Bigtable failed is published
again on the retry and frozen once (docs/INGESTION.md, order of writes).

The function under test gets its own Bigtable emulator (the stack's other stores are
shared), so stopping it or dropping one of its tables does not disturb other tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulators.bootstrap import create_bigtable
from emulators.config import StackSettings
from shared.platform import clients
from shared.system.resources import (
    BIGTABLE_INSTANCE,
    EVENT_IDS_TABLE,
    ID_FAMILY,
    SHOPPER_EVENTS_TOPIC,
    SYSTEM,
)
from tests.factories import event
from tests.integration.private_emulators import PrivateEmulator, running
from tests.integration.serving import PRODUCT_FUNCTIONS, serve_function
from tests.integration.test_freezer import rows_of
from tests.integration.test_ingest_api import Tap, post

pytestmark = pytest.mark.integration


class PrivateBigtable(PrivateEmulator):
    """A Bigtable emulator of one test's own, with the system's tables."""

    kind = "bigtable"
    variable = "BIGTABLE_EMULATOR_HOST"

    def prepare(self) -> None:
        with self.pointed():
            create_bigtable(self.settings, SYSTEM)

    def drop_family(self, table: str, family: str) -> None:
        """Reads of the table still answer (nothing in that family), writes to the family
        fail: a failure exactly between two of ingest's writes."""
        with self.pointed():
            admin = clients.bigtable_client(self.project, admin=True)
            admin.instance(BIGTABLE_INSTANCE).table(table).column_family(family).delete()

    def restore(self) -> None:
        self.prepare()


@pytest.fixture
def private_bigtable(
    stack: dict[str, str], stack_settings: StackSettings
) -> Iterator[PrivateBigtable]:
    with running(PrivateBigtable(stack_settings, stack["GOOGLE_CLOUD_PROJECT"])) as bigtable:
        yield bigtable


@pytest.fixture
def ingest_on(
    stack: dict[str, str], stack_settings: StackSettings, private_bigtable: PrivateBigtable
) -> Iterator[Any]:
    """``send(events)``: a POST to an ingest function that uses the private Bigtable."""
    env = {"BIGTABLE_EMULATOR_HOST": private_bigtable.host}
    with serve_function(
        stack_settings, "ingest_events", "ingest_events", "http", env, PRODUCT_FUNCTIONS
    ) as url:

        def send(events: list[dict[str, Any]]) -> requests.Response:
            return requests.post(
                f"{url}/v1/events",
                data=json.dumps({"events": events}),
                headers={"X-Api-Key": stack["DEMO_API_KEY"], "Content-Type": "application/json"},
                timeout=60,
            )

        yield send


def until_accepted(send: Any, events: list[dict[str, Any]], wait_s: float = 60) -> Any:
    """Retry as a tracker does, after Retry-After, until the request is answered 202."""
    deadline = time.monotonic() + wait_s
    answer = send(events)
    while answer.status_code == 503 and time.monotonic() < deadline:
        time.sleep(int(answer.headers["Retry-After"]))
        answer = send(events)
    return answer


def assert_unavailable(answer: requests.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    assert "accepted" not in answer.json()


def test_bigtable_down_gives_503_then_the_retry_lands_once(
    stack: dict[str, str], private_bigtable: PrivateBigtable, ingest_on: Any, unique: str
) -> None:
    shopper = f"bt-down-{unique}"
    before = [event("page_viewed", shopper) for _ in range(5)]
    assert ingest_on(before).json()["accepted"] == 5

    private_bigtable.stop()
    during = [event("search_performed", shopper) for _ in range(5)]
    assert_unavailable(ingest_on(during))

    private_bigtable.start()  # back, empty
    retried = until_accepted(ingest_on, during)
    assert retried.status_code == 202, retried.text
    assert retried.json()["accepted"] == 5
    again = ingest_on(during)
    assert again.json()["accepted"] == 0 and again.json()["duplicate_count"] == 5

    deadline = time.monotonic() + 90
    while len(rows_of(stack, "searches", [shopper])) < 5 and time.monotonic() < deadline:
        time.sleep(1)
    assert sorted(r["event_id"] for r in rows_of(stack, "searches", [shopper])) == sorted(
        e["event_id"] for e in during
    )


def test_published_but_not_indexed_is_published_again_on_retry_and_frozen_once(
    stack: dict[str, str], private_bigtable: PrivateBigtable, ingest_on: Any, unique: str
) -> None:
    """The index (``event_ids``, its family dropped) fails after the publish: 503, and
    the retry stores and publishes the same events again (two copies on the topic), then
    indexes them; the freezer, idempotent on ``event_id``, freezes each once."""
    shopper = f"bt-index-{unique}"
    tap = Tap(stack["GOOGLE_CLOUD_PROJECT"], SHOPPER_EVENTS_TOPIC, f"bt-{unique}")
    try:
        private_bigtable.drop_family(EVENT_IDS_TABLE, ID_FAMILY)
        events = [event("page_viewed", shopper) for _ in range(3)]
        assert_unavailable(ingest_on(events))
        private_bigtable.restore()
        retried = until_accepted(ingest_on, events)
        assert retried.status_code == 202, retried.text
        assert retried.json()["accepted"] == 3
        ids = {e["event_id"] for e in events}
        published = tap.collect(ids, wait_s=30)
        assert sorted(m.attributes["event_id"] for m in published) == sorted(list(ids) * 2)
    finally:
        tap.delete()
    # A later event of the same shopper, through the stack's ingest, frozen: the copies
    # published before it had every chance to be frozen (twice, if the freezer were not
    # idempotent) by then.
    sentinel = event("search_performed", shopper)
    assert post(stack, [sentinel]).json()["accepted"] == 1
    deadline = time.monotonic() + 90
    while not rows_of(stack, "searches", [shopper]) and time.monotonic() < deadline:
        time.sleep(1)
    assert [r["event_id"] for r in rows_of(stack, "searches", [shopper])] == [sentinel["event_id"]]
    assert sorted(r["event_id"] for r in rows_of(stack, "page_views", [shopper])) == sorted(ids)
