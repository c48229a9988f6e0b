"""Events through the ingest API become exactly the expected read-model rows, once.

Expected rows are written out here from the events' payloads (not computed with the
freezer's own code), then the same messages are delivered again and the whole range is
replayed: the rows must not change.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from google.pubsub_v1.types import PubsubMessage

from shared.freezer.commands import republish_command
from shared.freezer.read_models import LATE_WINDOW
from shared.platform import clients
from shared.system.resources import (
    SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
    SHOPPER_EVENTS_TOPIC,
)
from tests.factories import PAYLOADS, event
from tests.integration.test_ingest_api import Tap, post

pytestmark = pytest.mark.integration

TABLES = (
    "page_views",
    "link_clicks",
    "searches",
    "basket_changes",
    "orders",
    "sold_products",
    "order_status_changes",
    "experience_impressions",
    "experience_clicks",
)


def query(stack: dict[str, str], sql: str, **params: Any) -> list[dict[str, Any]]:
    from google.cloud import bigquery

    client = clients.bigquery_client(stack["GOOGLE_CLOUD_PROJECT"], stack["BIGQUERY_EMULATOR_HOST"])
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ArrayQueryParameter(k, "STRING", v)
            if isinstance(v, list)
            else bigquery.ScalarQueryParameter(k, "STRING", v)
            for k, v in params.items()
        ]
    )
    return [dict(r) for r in client.query(sql, job_config=config).result(timeout=60)]


def rows_of(stack: dict[str, str], table: str, shoppers: list[str]) -> list[dict[str, Any]]:
    return query(
        stack,
        f"SELECT * FROM `{stack['GOOGLE_CLOUD_PROJECT']}.cartwise.{table}` "
        "WHERE shopper_id IN UNNEST(@shoppers) ORDER BY row_id",
        shoppers=shoppers,
    )


def wait_for_rows(
    stack: dict[str, str], shoppers: list[str], expected: dict[str, int], timeout_s: float = 90
) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = {t: len(rows_of(stack, t, shoppers)) for t in expected}
        if counts == expected:
            return counts
        time.sleep(1)
    return counts


def expected_rows(events: list[dict[str, Any]], retailer: str) -> dict[str, list[dict[str, Any]]]:
    """Every read-model row the events must produce, written from the payloads."""
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    for e in events:
        p = e["payload"]
        base = {
            "row_id": f"{retailer}/{e['event_id']}",
            "event_id": e["event_id"],
            "retailer_id": retailer,
            "shopper_id": e["shopper_id"],
            "session_id": e["session_id"],
            "occurred_at": datetime.fromisoformat(e["occurred_at"]),
        }
        kind = e["type"]
        if kind == "page_viewed":
            out["page_views"].append(
                {
                    **base,
                    "url": p["url"],
                    "page_type": p["page_type"],
                    "product_id": None,
                    "category": p["category"],
                }
            )
        elif kind == "link_clicked":
            out["link_clicks"].append(
                {**base, "url": p["url"], "target_url": p["target_url"], "label": p["label"]}
            )
        elif kind == "search_performed":
            out["searches"].append({**base, "query": p["query"], "result_count": p["result_count"]})
        elif kind in ("product_added_to_basket", "product_removed_from_basket"):
            sign = 1 if kind == "product_added_to_basket" else -1
            out["basket_changes"].append(
                {
                    **base,
                    "product_id": p["product_id"],
                    "brand": p.get("brand"),
                    "category": p.get("category"),
                    "change": "added" if sign > 0 else "removed",
                    "quantity": sign * p["quantity"],
                    "unit_price": Decimal(p["unit_price"]),
                    "amount": sign * p["quantity"] * Decimal(p["unit_price"]),
                }
            )
        elif kind == "cart_validated":
            out["orders"].append(
                {
                    **base,
                    "order_id": p["order_id"],
                    "total": Decimal(p["total"]),
                    "line_count": 2,
                    "item_count": 3,
                    "gross_amount": Decimal("4.98"),
                    "discount_amount": Decimal("0.50"),
                }
            )
            out["sold_products"] += [
                {
                    **base,
                    "row_id": f"{retailer}/{e['event_id']}:0",
                    "order_id": p["order_id"],
                    "line_number": 0,
                    "product_id": "p-1",
                    "brand": None,
                    "category": None,
                    "quantity": 2,
                    "unit_price": Decimal("1.49"),
                    "discount": Decimal("0.50"),
                    "amount": Decimal("2.48"),
                },
                {
                    **base,
                    "row_id": f"{retailer}/{e['event_id']}:1",
                    "order_id": p["order_id"],
                    "line_number": 1,
                    "product_id": "p-2",
                    "brand": None,
                    "category": None,
                    "quantity": 1,
                    "unit_price": Decimal("2.00"),
                    "discount": Decimal("0"),
                    "amount": Decimal("2.00"),
                },
            ]
        elif kind == "order_status_changed":
            out["order_status_changes"].append(
                {**base, "order_id": p["order_id"], "status": p["status"]}
            )
        else:
            table = (
                "experience_impressions" if kind == "experience_displayed" else "experience_clicks"
            )
            out[table].append(
                {**base, "experience_id": p["experience_id"], "campaign_id": p["campaign_id"]}
            )
    return {t: sorted(rows, key=lambda r: r["row_id"]) for t, rows in out.items()}


def assert_rows_match(
    stack: dict[str, str], shoppers: list[str], expected: dict[str, list[dict[str, Any]]]
) -> None:
    for table, rows in expected.items():
        actual = rows_of(stack, table, shoppers)
        assert len(actual) == len(rows), table
        for got, want in zip(actual, rows, strict=True):
            assert got["ingested_at"] is not None
            got = {k: v for k, v in got.items() if k != "ingested_at"}
            for key in (
                "unit_price",
                "amount",
                "discount",
                "total",
                "gross_amount",
                "discount_amount",
            ):
                if key in got:
                    got[key] = Decimal(got[key]).normalize()
                    want = {**want, key: Decimal(want[key]).normalize()}
            assert got == want, table


@pytest.fixture
def dead_letter_tap(stack: dict[str, str], unique: str) -> Iterator[Tap]:
    tap = Tap(stack["GOOGLE_CLOUD_PROJECT"], SHOPPER_EVENTS_DEAD_LETTER_TOPIC, f"dl-{unique}")
    yield tap
    tap.delete()


def test_events_become_exactly_the_expected_rows_even_after_redelivery_and_replay(
    stack: dict[str, str], unique: str
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    shoppers = [f"fz-{unique}-{n}" for n in range(3)]
    events = [
        event(kind, shopper, occurred_at=start + timedelta(seconds=i))
        for i, (shopper, kind) in enumerate(
            (s, k) for s in shoppers for k in [*PAYLOADS, "product_removed_from_basket"]
        )
    ]
    response = post(stack, events)
    assert response.json()["accepted"] == len(events), response.text
    expected = expected_rows(events, stack["DEMO_RETAILER_ID"])
    counts = {t: len(r) for t, r in expected.items()}
    assert wait_for_rows(stack, shoppers, counts) == counts
    assert_rows_match(stack, shoppers, expected)

    # Forced redelivery: the very same messages, published again.
    project = stack["GOOGLE_CLOUD_PROJECT"]
    publisher = clients.publisher_api()
    from shared.ingestion.bigtable_events import BigtableEventArchive

    archive = BigtableEventArchive(clients.bigtable_client(project).instance("cartwise"))
    stored = [
        r
        for r in archive.scan(stack["DEMO_RETAILER_ID"], start, datetime.now(UTC))
        if json.loads(r.message)["event"]["shopper_id"] in shoppers
    ]
    assert len(stored) == len(events)
    publisher.publish(
        topic=clients.topic_path(project, SHOPPER_EVENTS_TOPIC),
        messages=[
            PubsubMessage(data=r.message, attributes=r.attributes, ordering_key=r.ordering_key)
            for r in stored
        ],
        timeout=30,
    )
    # And a replay of the whole range with the operator's command.
    assert republish_command(stack["DEMO_RETAILER_ID"], start, datetime.now(UTC)) == 0

    # A sentinel per shopper, published after: once frozen, the shopper's earlier
    # messages were handled too (the stream delivers one shopper's messages in order).
    sentinels = [event("search_performed", s, query="sentinel") for s in shoppers]
    assert post(stack, sentinels).json()["accepted"] == len(shoppers)
    counts["searches"] += len(shoppers)
    # The sentinels are the marker: no grace period. A copy frozen twice would have made a
    # count overshoot on the way, and wait_for_rows waits for the exact counts.
    assert wait_for_rows(stack, shoppers, counts) == counts
    expected["searches"] = sorted(
        expected["searches"] + expected_rows(sentinels, stack["DEMO_RETAILER_ID"])["searches"],
        key=lambda r: r["row_id"],
    )
    assert_rows_match(stack, shoppers, expected)


def publish_poison(stack: dict[str, str], unique: str) -> set[str]:
    """Two messages no consumer of ``shopper-events`` can handle: not JSON, and an event of
    an unknown schema version. Every consumer (freezer, decider, void_plays) dead-letters
    them with its own name; the tests below tell them apart by ``dead_lettered_by``."""
    bad_version = {
        "retailer_id": "r",
        "ingested_at": datetime.now(UTC).isoformat(),
        "event": {**event(), "schema_version": 99},
    }
    response = clients.publisher_api().publish(
        topic=clients.topic_path(stack["GOOGLE_CLOUD_PROJECT"], SHOPPER_EVENTS_TOPIC),
        messages=[
            PubsubMessage(data=b"\x00 not json", attributes={"probe": unique}),
            PubsubMessage(data=json.dumps(bad_version).encode(), attributes={"probe": unique}),
        ],
        timeout=30,
    )
    return set(response.message_ids)


def dead_lettered_by(
    tap: Tap, poison_ids: set[str], source: str, wait_s: float = 60
) -> dict[str, str]:
    """The reasons ``source`` gave for each poison message (waits until it gave them all)."""
    reasons: dict[str, str] = {}
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and set(reasons) != poison_ids:
        for m in tap.collect(poison_ids, key="original_message_id", wait_s=2):
            if m.attributes["dead_lettered_by"] == source:
                reasons[m.attributes["original_message_id"]] = m.attributes["dead_letter_reason"]
    return reasons


def counted_dead_letters(
    stack: dict[str, str], poison_ids: set[str], source: str
) -> list[dict[str, Any]]:
    """The ``dead_letters`` rows ``source`` wrote for the poison messages (waits for them)."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    deadline = time.monotonic() + 30
    while True:
        rows = query(
            stack,
            f"SELECT message_id, reason, data_base64 FROM `{project}.cartwise.dead_letters` "
            "WHERE message_id IN UNNEST(@ids) AND source = @source",
            ids=sorted(poison_ids),
            source=source,
        )
        if {r["message_id"] for r in rows} == poison_ids or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_a_poison_message_is_dead_lettered_by_the_freezer_with_its_reason_and_the_stream_flows(
    stack: dict[str, str], unique: str, dead_letter_tap: Tap
) -> None:
    poison_ids = publish_poison(stack, unique)
    shopper = f"fz-{unique}"
    good = event("page_viewed", shopper)
    assert post(stack, [good]).json()["accepted"] == 1

    reasons = dead_lettered_by(dead_letter_tap, poison_ids, "freezer")
    assert set(reasons) == poison_ids
    assert any(r.startswith("not a shopper-event message") for r in reasons.values())
    assert any("schema_version" in r for r in reasons.values())
    assert wait_for_rows(stack, [shopper], {"page_views": 1}) == {"page_views": 1}
    counted = counted_dead_letters(stack, poison_ids, "freezer")
    assert {r["message_id"] for r in counted} == poison_ids
    assert (
        base64.b64decode(next(r for r in counted if r["reason"].startswith("not a"))["data_base64"])
        == b"\x00 not json"
    )


def test_an_event_older_than_the_late_window_is_accepted_then_parked_with_its_reason(
    stack: dict[str, str], unique: str, dead_letter_tap: Tap
) -> None:
    """Ingest takes any past ``occurred_at``; the freezer parks what is dated further back
    than its late window (the local stack's: FREEZER_LATE_WINDOW_DAYS), with the reason,
    and freezes the same shopper's event of today."""
    local = timedelta(days=int(stack["FREEZER_LATE_WINDOW_DAYS"]))
    assert local > LATE_WINDOW  # the simulations' widened window; the cloud's is 3 days
    shopper = f"fz-{unique}"
    old = event("page_viewed", shopper, occurred_at=datetime.now(UTC) - local - timedelta(days=1))
    today = event("page_viewed", shopper)
    assert post(stack, [old, today]).json()["accepted"] == 2

    parked = dead_letter_tap.collect({old["event_id"]}, wait_s=60)
    by_freezer = [m for m in parked if m.attributes["dead_lettered_by"] == "freezer"]
    assert len(by_freezer) == 1, parked
    reason = by_freezer[0].attributes["dead_letter_reason"]
    assert reason.startswith(f"parked: occurred_at {old['occurred_at'][:10]}"), reason
    assert f"more than {local.days} days before ingested_at" in reason, reason
    assert reason.endswith("(late window)"), reason
    assert wait_for_rows(stack, [shopper], {"page_views": 1}) == {"page_views": 1}
    ids = [r["event_id"] for r in rows_of(stack, "page_views", [shopper])]
    assert ids == [today["event_id"]]


def test_the_decider_quarantines_poison_on_its_own_subscription(
    stack: dict[str, str], unique: str, dead_letter_tap: Tap
) -> None:
    """The decider reads the same topic through its own (ordered) subscription: it sets the
    same poison aside under its own name, in the topic and in ``dead_letters``."""
    poison_ids = publish_poison(stack, unique)
    reasons = dead_lettered_by(dead_letter_tap, poison_ids, "decider")
    assert set(reasons) == poison_ids
    assert any(r.startswith("not a shopper-event message") for r in reasons.values())
    assert any("schema_version" in r for r in reasons.values())
    counted = counted_dead_letters(stack, poison_ids, "decider")
    assert {r["message_id"] for r in counted} == poison_ids


def test_the_push_form_freezes_a_cloudevent(stack: dict[str, str], unique: str) -> None:
    from cloudevents.http import CloudEvent
    from functions_framework import create_app

    shopper = f"fz-push-{unique}"
    e = event("order_status_changed", shopper)
    data = {"retailer_id": "r-push", "ingested_at": datetime.now(UTC).isoformat(), "event": e}
    app = create_app("freeze_event", "functions/freeze_events/main.py", "cloudevent")
    cloud_event = CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": f"//pubsub.googleapis.com/projects/{stack['GOOGLE_CLOUD_PROJECT']}/topics/t",
        },
        {
            "message": {
                "data": base64.b64encode(json.dumps(data).encode()).decode(),
                "messageId": f"m-{unique}",
                "attributes": {},
            }
        },
    )
    from cloudevents.conversion import to_structured

    headers, body = to_structured(cloud_event)
    client = app.test_client()
    for _ in range(2):  # delivered twice: one row
        assert client.post("/", headers=headers, data=body).status_code == 200
    # Appended twice to the landing table; the scheduled compaction brings one row.
    wanted = {"order_status_changes": 1}
    assert wait_for_rows(stack, [shopper], wanted) == wanted
    rows = rows_of(stack, "order_status_changes", [shopper])
    assert [(r["event_id"], r["retailer_id"], r["status"]) for r in rows] == [
        (e["event_id"], "r-push", "delivered")
    ]


def test_more_poison_than_one_publish_request_carries_is_dead_lettered_whole(
    stack: dict[str, str], unique: str
) -> None:
    """Pub/Sub takes at most 1,000 messages per ``Publish`` request (the emulator enforces
    it too). The dead-letter sink splits what it sets aside: a batch of 2,000 poison
    messages once made its one publish fail for ever, and the freezer redelivered that
    batch, holding up every event behind it. Here 1,001 land on a topic of the test's own
    (so that no re-drive ever takes them) and in ``dead_letters``."""
    from shared.contract.messages import PoisonMessage
    from shared.freezer.bigquery_read_models import BigQueryReadModelSink
    from shared.freezer.read_models import DEAD_LETTERS
    from shared.platform.pubsub_dead_letters import DeadLetterFanout

    project = stack["GOOGLE_CLOUD_PROJECT"]
    topic = f"dead-letters-{unique}"
    clients.publisher_api().create_topic(name=clients.topic_path(project, topic), timeout=10)
    tap = Tap(project, topic, f"tap-{topic}")
    try:
        source = f"test-{unique}"
        poison = [
            PoisonMessage(
                message_id=f"{unique}-{i}", reason="not JSON", data=b"\x00", attributes={}
            )
            for i in range(1001)
        ]
        DeadLetterFanout(
            clients.publisher_api(),
            clients.topic_path(project, topic),
            BigQueryReadModelSink(
                clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"]),
                project,
                (DEAD_LETTERS,),
            ),
            DEAD_LETTERS.name,
            source,
        ).send(poison)
        ids = {p.message_id for p in poison}
        came = tap.collect(ids, key="original_message_id", wait_s=60)
        assert {m.attributes["original_message_id"] for m in came} == ids
        assert len(came) == 1001
        counted = query(
            stack,
            f"SELECT COUNT(*) AS n FROM `{project}.cartwise.dead_letters` WHERE source = @s",
            s=source,
        )
        assert counted[0]["n"] == 1001
    finally:
        tap.delete()
        clients.publisher_api().delete_topic(topic=clients.topic_path(project, topic), timeout=10)
