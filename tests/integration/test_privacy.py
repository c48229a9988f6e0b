"""Privacy on the emulators: erasure through every store, retention purge per data class,
objection refused at ingest (docs/PRIVACY.md)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.cloud.firestore_v1.base_query import FieldFilter

from emulators.config import ROOT, StackSettings
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.contract.events import validate_event
from shared.freezer.bigquery_read_models import BigQueryReadModelSink
from shared.ingestion.bigtable_events import BigtableEventStore
from shared.ingestion.service import make_record, message_head, reverse_micros, shopper_prefix
from shared.nightly.firestore_runs import FirestoreNightlyRuns
from shared.platform import clients
from shared.platform.bigtable_raw import Cell, micros, mutate_rows
from shared.privacy.firestore_records import FirestoreRetention
from shared.privacy.retention import DataClass
from shared.privacy.store_plan import store_plan
from shared.privacy_marks.marks import ShopperHasher
from shared.rewards.firestore_plays import FirestorePlayStore
from shared.rewards.game import Play
from shared.system.resources import (
    BIGTABLE_INSTANCE,
    CREDENTIALS_DATABASE,
    EXPERIENCE_TREES_TABLE,
    PRIVACY_MARKS_TABLE,
    REJECTED_EVENTS_TABLE,
    REJECTED_EVENTS_TOPIC,
    REJECTED_FAMILY,
    RETENTION,
    REWARDS_DATABASE,
    SHOPPER_EVENTS_TOPIC,
    SHOPPER_STATE_TABLE,
    STATE_FAMILY,
    SYSTEM,
    TREE_FAMILY,
)
from tests.factories import event
from tests.integration import store_scan
from tests.integration.test_freezer import query
from tests.integration.test_ingest_api import Tap, post

pytestmark = pytest.mark.integration

PRIVACY_COLLECTIONS = {
    "firestore:(default)/erasure_requests",
    "firestore:(default)/suppressions",
    "firestore:(default)/privacy_audit",
}


def _history(shopper: str, days_ago: int, products: list[str]) -> list[dict[str, Any]]:
    """A visit that ends in an order, with one event of every type (each read model)."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    order = f"o-{uuid.uuid4().hex[:8]}"
    lines = [{"product_id": p, "quantity": 1, "unit_price": "2.00"} for p in products]
    return [
        event("page_viewed", shopper, at),
        event("link_clicked", shopper, at + timedelta(seconds=2)),
        event("search_performed", shopper, at + timedelta(seconds=5)),
        event("product_added_to_basket", shopper, at + timedelta(seconds=10), **lines[0]),
        event("experience_displayed", shopper, at + timedelta(minutes=1)),
        event("experience_clicked", shopper, at + timedelta(minutes=1, seconds=5)),
        event(
            "cart_validated",
            shopper,
            at + timedelta(minutes=2),
            order_id=order,
            total=f"{2 * len(lines)}.00",
            lines=lines,
        ),
        event("order_status_changed", shopper, at + timedelta(hours=5), order_id=order),
    ]


def _wait_rows(
    stack: dict[str, str], table: str, shopper: str, at_least: int, timeout_s: float = 90
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = query(
            stack,
            f"SELECT COUNT(*) AS n FROM `{stack['GOOGLE_CLOUD_PROJECT']}.cartwise.{table}` "
            "WHERE shopper_id = @s",
            s=shopper,
        )
        if rows[0]["n"] >= at_least:
            return
        time.sleep(1)
    raise AssertionError(f"{table}: fewer than {at_least} rows of the shopper in {timeout_s}s")


def _popular_products(stack: dict[str, str], retailer: str, n: int) -> list[str]:
    """The retailer's most sold products: a shopper who buys them has neighbours and
    candidates in the nightly, like any real shopper of the retailer."""
    rows = query(
        stack,
        "SELECT product_id, COUNT(*) AS n FROM "
        f"`{stack['GOOGLE_CLOUD_PROJECT']}.cartwise.sold_products` WHERE retailer_id = @r "
        f"GROUP BY product_id ORDER BY n DESC, product_id LIMIT {int(n)}",
        r=retailer,
    )
    assert len(rows) == n, rows
    return [str(r["product_id"]) for r in rows]


def _nightly_steps(stack: dict[str, str], run_id: str) -> dict[str, Any]:
    """The nightly's steps on the stack's step service, as the workflow calls them, up to
    and including ``compile_trees``: the score tables and the personal trees are written by
    the real steps whatever the gate says (twenty households cannot pass it surely), and
    ``publish`` is not called, so the ``nightly/current`` pointer stays where it was. The
    run's record is then marked ``failed`` in Firestore directly: an erasure's last pass
    waits for a run in progress, and the step service's finish would delete the run's rows
    that this test must see erased (it is called once the test is over,
    ``_finish_failed``)."""
    base = stack["NIGHTLY_STEPS_URL"]
    begun = requests.post(f"{base}/runs", json={"run_id": run_id}, timeout=60)
    assert begun.status_code == 200, begun.text
    summaries: dict[str, Any] = {}
    for name in ("features", "train", "evaluate", "offer_policy", "score", "compile_trees"):
        answer = requests.post(f"{base}/steps/{name}", json={"run_id": run_id}, timeout=900)
        for _ in range(3):  # a store that did not answer: retried, as the workflow does
            if answer.status_code != 503:
                break
            time.sleep(int(answer.headers.get("Retry-After", "5")))
            answer = requests.post(f"{base}/steps/{name}", json={"run_id": run_id}, timeout=900)
        assert answer.status_code == 200, (name, answer.text)
        summaries[name] = answer.json()
        if name == "score":  # the shard job, one task: the shoppers' scores and trees
            task = subprocess.run(
                [sys.executable, "-m", "functions.nightly_shards.job"],
                cwd=ROOT,
                env={
                    **os.environ,
                    "NIGHTLY_RUN_ID": run_id,
                    "CLOUD_RUN_TASK_INDEX": "0",
                    "CLOUD_RUN_TASK_COUNT": "1",
                },
                capture_output=True,
                timeout=900,
                check=False,
            )
            assert task.returncode == 0, task.stdout[-2000:]
    FirestoreNightlyRuns(clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"])).finish(
        run_id, "failed", datetime.now(UTC), {"reason": "erasure test: not published"}
    )
    return summaries


def _finish_failed(stack: dict[str, str], run_id: str) -> None:
    finished = requests.post(
        f"{stack['NIGHTLY_STEPS_URL']}/runs/{run_id}/finish",
        json={"outcome": "failed", "summary": {"reason": "erasure test: not published"}},
        timeout=60,
    )
    assert finished.status_code == 200, finished.text


def _dead_letter(stack: dict[str, str], retailer: str, shopper: str) -> str:
    """A message naming the shopper that no consumer can handle (an unknown schema
    version), published on ``shopper-events``: every consumer dead-letters it for real."""
    from google.pubsub_v1.types import PubsubMessage

    poison = {
        "retailer_id": retailer,
        "ingested_at": datetime.now(UTC).isoformat(),
        "event": {**event(shopper_id=shopper), "schema_version": 99},
    }
    published = clients.publisher_api().publish(
        topic=clients.topic_path(stack["GOOGLE_CLOUD_PROJECT"], SHOPPER_EVENTS_TOPIC),
        messages=[PubsubMessage(data=json.dumps(poison).encode())],
        timeout=30,
    )
    return str(published.message_ids[0])


def _won_and_claimed(
    stack: dict[str, str], key: bytes, api_key: str, retailer: str, shopper: str, email: str
) -> str:
    """A real play (odds 1) and its claim, through the plays API: the play in the rewards
    database and (by freeze_plays) in BigQuery, the address in the vault. Returns the
    campaign's id (the caller deletes it)."""
    from tests.integration.test_rewards import game, play, token

    campaign = game(
        stack, f"erasure-{uuid.uuid4().hex[:8]}", odds=1.0, prize="4.48", retailers=[retailer]
    )
    order = f"o-won-{uuid.uuid4().hex[:8]}"
    play_token = token(key, campaign, order, retailer=retailer, shopper=shopper)
    played = play(stack, play_token, api_key)
    assert played.status_code == 201 and played.json()["outcome"] == "won", played.text
    claimed = requests.post(
        f"{stack['PLAYS_URL']}/v1/plays/{played.json()['play_id']}/claim",
        headers={"X-Api-Key": api_key},
        json={"play_token": play_token, "email": email},
        timeout=30,
    )
    assert claimed.status_code == 200, claimed.text
    return campaign.campaign_id


def _journey_rows(stack: dict[str, str], retailer: str, shopper: str) -> None:
    """The retailer's shopper reached by a Complete Journey campaign and redeeming its
    coupon, in the two journey tables, loaded as ``cartwise import-campaigns`` loads them
    (the target is no household of the data set, so the import itself cannot name it)."""
    from shared.freezer.bigquery_bulk_load import BigQueryBulkLoader
    from shared.journey.campaigns import (
        JOURNEY_CAMPAIGN_SHOPPERS,
        JOURNEY_COUPON_REDEMPTIONS,
        JOURNEY_TABLES,
    )

    project = stack["GOOGLE_CLOUD_PROJECT"]
    loader = BigQueryBulkLoader(
        clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"]), project, JOURNEY_TABLES
    )
    day = datetime.now(UTC) - timedelta(days=3)
    reached = {
        "row_id": f"cj-8:{retailer}:{shopper}",
        "campaign_id": "cj-8",
        "retailer_id": retailer,
        "shopper_id": shopper,
    }
    redeemed = {
        "row_id": f"cj-8:{retailer}:{shopper}:51800000050:{day.date().isoformat()}",
        "campaign_id": "cj-8",
        "retailer_id": retailer,
        "shopper_id": shopper,
        "coupon_upc": "51800000050",
        "redeemed_at": day.isoformat(),
    }
    assert loader.load(JOURNEY_CAMPAIGN_SHOPPERS.name, [reached]) == 1
    assert loader.load(JOURNEY_COUPON_REDEMPTIONS.name, [redeemed]) == 1


def _settled_others(stack: dict[str, str], project: str, target: str) -> dict[str, int]:
    """Everyone else's records, once earlier tests' erasure requests are done (the
    scheduler sweeps them every minute: one finishing meanwhile deleted another shopper's
    rows in CI) and their events in flight have landed (two counts 2 s apart agree)."""
    deadline = time.monotonic() + 300
    while True:
        swept = requests.post(f"{stack['PRIVACY_MAINTENANCE_URL']}/erasures/run", timeout=600)
        assert swept.status_code == 200, swept.text
        if all(r["status"] == "done" for r in swept.json()["requests"]):
            break
        assert time.monotonic() < deadline, swept.text
    counts = store_scan.others(project, target)
    for _ in range(15):
        time.sleep(2)
        again = store_scan.others(project, target)
        if again == counts:
            return counts
        counts = again
    return counts


def _swept_until_done(
    stack: dict[str, str], api_key: str, location: str, timeout_s: float = 300
) -> dict[str, Any]:
    """Run the sweep (what Cloud Scheduler does every minute; the local scheduler too) until
    the request is done."""
    headers = {"X-Api-Key": api_key}
    deadline = time.monotonic() + timeout_s
    while True:
        status = requests.get(f"{stack['ERASURE_URL']}{location}", headers=headers, timeout=30)
        if status.json()["status"] == "done":
            return dict(status.json())
        assert time.monotonic() < deadline, f"erasure not done in {timeout_s}s"
        swept = requests.post(f"{stack['PRIVACY_MAINTENANCE_URL']}/erasures/run", timeout=600)
        assert swept.status_code == 200, swept.text
        time.sleep(1)


def _requested(stack: dict[str, str], api_key: str, shopper: str) -> str:
    """Request the shopper's erasure; the request's path."""
    headers = {"X-Api-Key": api_key, "Content-Type": "application/json"}
    created = requests.post(
        f"{stack['ERASURE_URL']}/v1/erasure-requests",
        json={"shopper_id": shopper},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 202, created.text
    body = created.json()
    assert body["status"] == "running" and "shopper_id" not in body
    assert set(body["receipts"]) == {p.name for p in store_plan()}
    return f"/v1/erasure-requests/{body['request_id']}"


def _erasure(
    stack: dict[str, str], api_key: str, shopper: str, timeout_s: float = 300
) -> dict[str, Any]:
    return _swept_until_done(stack, api_key, _requested(stack, api_key, shopper), timeout_s)


@pytest.fixture
def journey_retailer(stack: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(retailer, API key): a retailer of the Complete Journey replay (whose shoppers the
    backfill writes, so that the nightly has neighbours for the test's shoppers), with a
    key of the test's own, deleted afterwards (the retailer's other documents stay)."""
    from shared.journey.tracker_simulator import RETAILERS
    from shared.retailers.firestore_api_keys import COLLECTION as API_KEYS
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.keys import hash_api_key, issue_api_key

    firestore = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"], CREDENTIALS_DATABASE)
    key = issue_api_key(FirestoreApiKeyStore(firestore), RETAILERS[0], datetime.now(UTC))
    yield RETAILERS[0], key
    firestore.collection(API_KEYS).document(hash_api_key(key)).delete()


@pytest.mark.heavy
def test_an_erased_shopper_is_nowhere_and_the_others_are_untouched(
    stack: dict[str, str],
    stack_settings: StackSettings,
    unique: str,
    journey_retailer: tuple[str, str],
    request: pytest.FixtureRequest,
) -> None:
    """The target is put in every store of the store plan through the paths that write it
    in production (ingest, the freezer, the decider, a dead-lettered message, the nightly's
    steps, a play and its claim; the journey tables as the import loads them), the test
    requires it present in each before the erasure, and a receipt with ``deleted > 0`` from
    each eraser after it: an eraser that deletes nothing fails here.

    Left behind on purpose: the hashed suppression entry and audit records (what erasure
    keeps), and the dead-lettered message's copy on ``shopper-events-dead-letter``, which
    Pub/Sub holds for its retention period out of any eraser's reach (a later re-drive
    would bring it back; see docs/PRIVACY.md).

    Unlike the nightly tests, this one cannot train on a dataset of its own: the erasure
    reaches the stack's stores, so the target must be in them. Its steps therefore run on
    everything the stack holds (a few seconds on a fresh stack, minutes after a whole-year
    backfill; the heavy timeout covers both)."""
    from shared.cli import main as cartwise

    project = stack["GOOGLE_CLOUD_PROJECT"]
    retailer, api_key = journey_retailer
    target, keeper = f"erase-{unique}", f"keep-{unique}"
    email = f"winner-{unique}@example.org"
    key = (stack_settings.local_dir / "play-signing-key").read_text().strip().encode()
    # Some history of other shoppers of the retailer for the nightly run.
    assert cartwise(["backfill", "--weeks", "45-53", "--households", "20", "--workers", "1"]) == 0
    products = _popular_products(stack, retailer, 4)
    for shopper in (target, keeper):
        events = _history(shopper, 9, products[:3]) + _history(shopper, 4, products[1:])
        answer = post(stack, events, api_key=api_key)
        assert answer.status_code == 202 and answer.json()["accepted"] == len(events)
    # A refused event that names the shopper (kept in rejected_events for the retailer).
    bad = event("page_viewed", target) | {"payload": {"url": 3}}
    assert post(stack, [bad], api_key=api_key).json()["rejected_count"] == 1
    dead = _dead_letter(stack, retailer, target)
    for shopper in (target, keeper):
        _wait_rows(stack, "orders", shopper, 2)
    _journey_rows(stack, retailer, target)

    summaries = _nightly_steps(stack, f"erasure-{unique}")
    request.addfinalizer(lambda: _finish_failed(stack, f"erasure-{unique}"))
    assert summaries["compile_trees"]["personal_trees"] > 0, summaries["compile_trees"]
    # The shards write offer features only when a learnt offer policy is published, which
    # this run's few logs cannot give: the target's row is written here, as a shard would.
    query(
        stack,
        f"INSERT INTO `{project}.cartwise.shopper_offer_features` (run_id, retailer_id, "
        "shopper_id, campaign_id, targeted_weeks_share) VALUES (@run, @r, @s, 'c-any', 0.5)",
        run=f"erasure-{unique}",
        r=retailer,
        s=target,
    )
    # Live traffic on the personal tree: decisions and their experiences.
    now = datetime.now(UTC) - timedelta(seconds=5)
    live = [
        event("page_viewed", target, now),
        event(
            "product_added_to_basket", target, now + timedelta(seconds=1), product_id=products[0]
        ),
    ]
    assert post(stack, live, api_key=api_key).json()["accepted"] == len(live)
    game_id = _won_and_claimed(stack, key, api_key, retailer, target, email)
    campaigns = FirestoreCampaignStore(clients.firestore_client(project))
    request.addfinalizer(lambda: campaigns.delete(game_id))
    _wait_rows(stack, "decisions", target, len(live))
    _wait_rows(stack, "decision_experiences", target, 1)
    _wait_rows(stack, "plays", target, 1)
    deadline = time.monotonic() + 60
    while (
        len(
            query(
                stack,
                f"SELECT source FROM `{project}.cartwise.dead_letters` WHERE message_id = @m",
                m=dead,
            )
        )
        < 3
    ):  # the freezer, the decider and void_plays each set it aside
        assert time.monotonic() < deadline, "the poison was not dead-lettered by all three"
        time.sleep(1)

    before = store_scan.scan(project, target)
    found = {where for where, n in before.items() if n}
    missing = {p.name for p in store_plan()} - found
    assert not missing, (sorted(missing), before)
    print("stores holding the shopper before erasure:", sorted(found))
    assert store_scan.scan(project, email)["firestore:rewards/claims"] == 1
    others_before = _settled_others(stack, project, target)
    bigtable_before = store_scan.bigtable_counts(project)

    started = time.monotonic()
    done = _erasure(stack, api_key, target)
    print(f"erasure done in {time.monotonic() - started:.1f}s")

    assert all(r["status"] == "done" for r in done["receipts"].values())
    deleted = {name: r["deleted"] for name, r in done["receipts"].items()}
    assert {name for name, n in deleted.items() if n <= 0} == set(), deleted
    assert deleted["bigquery:orders"] == 2 and deleted["bigquery:dead_letters"] == 3
    assert deleted["bigquery:plays"] == 1 and deleted["firestore:rewards/claims"] == 1
    assert deleted["bigtable:rejected_events"] == 1
    after = store_scan.scan(project, target)
    assert {where: n for where, n in after.items() if n} == {}, after
    assert not any(store_scan.scan(project, email).values())

    # Only the hashed traces remain: the suppression entry and the audit.
    hashed = ShopperHasher(stack["SHOPPER_HASH_KEY"].encode())(retailer, target)
    hits = store_scan.firestore_hits(project, hashed)
    assert hits["firestore:(default)/suppressions"] == 1
    assert hits["firestore:(default)/privacy_audit"] == len(store_plan())

    others_after = store_scan.others(project, target)
    # The erased play's order stays as a keyed hash (no shopper): it is never drawn again.
    played = "firestore:rewards/played_orders"
    assert (
        others_after.get(played, 0)
        == others_before.get(played, 0) + deleted["firestore:rewards/plays"]
    )
    for where in set(others_before) | set(others_after):
        if where not in PRIVACY_COLLECTIONS and where != played:
            # None of the others' records may go; one may still land (a redelivery of an
            # earlier test's event, past its 60 s ack deadline, was seen in CI).
            assert others_after.get(where, 0) >= others_before.get(where, 0), where
    bigtable_after = store_scan.bigtable_counts(project)
    # The erasure leaves one row: its mark, keyed by the shopper's hash (docs/PRIVACY.md).
    marks = store_scan.bigtable_hits(project, hashed)
    assert marks.get(f"bigtable:{PRIVACY_MARKS_TABLE}") == 1, marks
    for where, count in bigtable_before.items():
        left = 1 if where == f"bigtable:{PRIVACY_MARKS_TABLE}" else 0
        assert bigtable_after[where] == count - before[where] + left, where
    assert store_scan.scan(project, keeper)["bigquery:orders"] == 2


def test_an_objecting_shoppers_events_are_refused_and_not_stored(
    stack: dict[str, str], unique: str, retailer_key: Callable[[str], str]
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    retailer = f"objection-{unique}"
    key = retailer_key(retailer)
    objector = f"objector-{unique}"
    headers = {"X-Api-Key": key, "Content-Type": "application/json"}
    answer = requests.post(
        f"{stack['ERASURE_URL']}/v1/suppressions",
        json={"shopper_id": objector},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    assert objector not in answer.text
    accepted_tap = Tap(project, SHOPPER_EVENTS_TOPIC, f"obj-{unique}")
    rejected_tap = Tap(project, REJECTED_EVENTS_TOPIC, f"obj-rejected-{unique}")
    try:
        ok = event(shopper_id=f"ok-{unique}")
        sent = post(stack, [event(shopper_id=objector), ok], api_key=key)
        body = sent.json()
        assert sent.status_code == 202 and body["accepted"] == 1
        assert [r["reasons"][0]["code"] for r in body["rejected"]] == ["shopper_suppressed"]
        # Not even on the topics: everything published around the request, up to the
        # accepted event of the same request, carries nothing of the objector.
        published: list[Any] = []
        assert accepted_tap.collect({ok["event_id"]}, everything=published)
        rejected_tap.collect(set(), wait_s=2, everything=published)
        assert [m for m in published if objector.encode() in m.data] == []
        assert not [m for m in published if objector in str(dict(m.attributes))]
    finally:
        accepted_tap.delete()
        rejected_tap.delete()
    # Once the same request's accepted event is frozen, the objector's would have been too.
    bigquery = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    deadline = time.monotonic() + 60
    while not any(store_scan.bigquery_hits(bigquery, project, ok["shopper_id"]).values()):
        assert time.monotonic() < deadline, "the accepted event was never frozen"
        time.sleep(0.5)
    # The objection's own erasure request holds the customer id until it is done.
    _swept_until_done(stack, key, answer.headers["Location"])
    assert not any(store_scan.scan(project, objector).values())
    bad = requests.post(
        f"{stack['ERASURE_URL']}/v1/suppressions", json={"shopper": 1}, headers=headers, timeout=30
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    assert (
        requests.post(
            f"{stack['ERASURE_URL']}/v1/erasure-requests", json={"shopper_id": "x"}, timeout=30
        ).status_code
        == 401
    )


# --- retention ---------------------------------------------------------------------------

PERIOD_DAYS = 30


def _value(column: Any, moment: datetime, retailer: str, shopper: str, tag: str) -> Any:
    if column.name == "retailer_id":
        return retailer
    if column.name == "shopper_id":
        return shopper
    if column.name in {"row_id", "event_id", "play_id"}:
        return f"{tag}-{uuid.uuid4().hex}"
    if column.name == "run_id":
        return tag
    return {
        "STRING": "x",
        "INT64": 1,
        "FLOAT64": 1.0,
        "NUMERIC": "1",
        "BOOL": False,
        "TIMESTAMP": moment.isoformat(),
        "DATE": moment.date().isoformat(),
        "JSON": "{}",
    }[column.type]


@pytest.mark.heavy
def test_retention_purges_exactly_the_old_records_of_each_class(
    stack: dict[str, str], unique: str
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    retailer = f"retention-{unique}"
    shopper = f"kept-and-purged-{unique}"
    now = datetime.now(UTC)
    old, young = now - timedelta(days=PERIOD_DAYS + 10), now - timedelta(days=PERIOD_DAYS - 10)
    firestore = clients.firestore_client(project)
    FirestoreRetention(firestore, RETENTION).set(
        retailer, {c.value: PERIOD_DAYS for c in DataClass}
    )
    bigtable = clients.bigtable_client(project)
    instance = bigtable.instance(BIGTABLE_INSTANCE)
    api = bigtable.table_data_client

    # Bigtable: events (cell time = occurred_at) with their index rows, hot state,
    # personal trees, rejected input: one old, one young each.
    events = {
        tag: validate_event(event(shopper_id=shopper, occurred_at=t))
        for tag, t in (("old", old), ("young", young))
    }
    records = {
        tag: make_record(retailer, e, message_head(retailer, now))
        for tag, e in events.items()
        if not isinstance(e, list)
    }
    store = BigtableEventStore(bigtable, BIGTABLE_INSTANCE)
    store.write(list(records.values()))
    store.mark_published(list(records.values()))
    for bt_table, family, bt_keys in (
        (
            SHOPPER_STATE_TABLE,
            STATE_FAMILY,
            {
                "old": shopper_prefix(retailer, f"{shopper}-o"),
                "young": shopper_prefix(retailer, shopper),
            },
        ),
        (
            EXPERIENCE_TREES_TABLE,
            TREE_FAMILY,
            {"old": f"{retailer}#{shopper}-o", "young": f"{retailer}#{shopper}"},
        ),
        (
            REJECTED_EVENTS_TABLE,
            REJECTED_FAMILY,
            # Keys as the writer makes them: newest first by time received.
            {
                "old": f"{retailer}#{reverse_micros(old)}#0000#old",
                "young": f"{retailer}#{reverse_micros(young)}#0000#young",
            },
        ),
    ):
        bt_rows: list[tuple[bytes, list[Cell]]] = [
            (bt_keys[tag].encode(), [(family, b"x", shopper.encode(), micros(t))])
            for tag, t in (("old", old), ("young", young))
        ]
        mutate_rows(api, instance.table(bt_table), bt_rows)
    # The retailer's default tree, however old, is not shopper data: it stays.
    mutate_rows(
        api,
        instance.table(EXPERIENCE_TREES_TABLE),
        [(f"{retailer}#".encode(), [(TREE_FAMILY, b"tree", b"{}", micros(old))])],
    )

    # BigQuery: every purgeable table of the plan, one old and one young row.
    bigquery = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    runs = clients.firestore_client(project).collection("nightly_runs")
    run_tags = {"old": f"old-{unique}", "young": f"young-{unique}"}
    for tag, moment in (("old", old), ("young", young)):
        runs.document(run_tags[tag]).set(
            {"run_id": run_tags[tag], "started_at": moment.isoformat()}
        )
    tables = {t.name: t for t in SYSTEM.bigquery_tables}
    purgeable = [
        p
        for p in store_plan()
        if p.kind in {"bigquery", "bigquery_runs"}
        and "retailer_id" in tables[p.target].column_names
        and (p.kind == "bigquery_runs" or tables[p.target].partition_field)
    ]
    assert len(purgeable) >= 15
    for planned in purgeable:
        table = tables[planned.target]
        rows = [
            {c.name: _value(c, moment, retailer, shopper, run_tags[tag]) for c in table.columns}
            for tag, moment in (("old", old), ("young", young))
        ]
        # Streamed, as the writers of plays do (the emulator allows DML on them).
        assert bigquery.insert_rows_json(f"{project}.{table.dataset}.{table.name}", rows) == []
    dead = tables["dead_letters"]
    for tag, moment in (("old", old), ("young", young)):
        message = {"retailer_id": retailer, "event": {"shopper_id": shopper, "tag": tag}}
        assert sink_write(bigquery, project, dead, tag, moment, message) == 1
    vault = clients.firestore_client(project, REWARDS_DATABASE).collection("claims")
    for tag, moment in (("old", old), ("young", young)):
        vault.document(f"{unique}-{tag}").set(
            {"retailer_id": retailer, "shopper_id": shopper, "claimed_at": moment}
        )
    # The rewards database's plays, as the plays store writes them (its purge's query on
    # (retailer_id, played_at) runs on the emulator).
    plays = FirestorePlayStore(clients.firestore_client(project, REWARDS_DATABASE))
    for tag, moment in (("old", old), ("young", young)):
        created = plays.create(
            Play(
                play_id=f"{unique}-{tag}",
                retailer_id=retailer,
                shopper_id=shopper,
                campaign_id="c-1",
                experience_id="c-1:play",
                order_id=f"o-{tag}",
                token_sha256="0" * 64,
                played_at=moment,
                drawn=True,
            )
        )
        assert created is not None

    purged = requests.post(f"{stack['PRIVACY_MAINTENANCE_URL']}/purge", timeout=600)
    assert purged.status_code == 200, purged.text
    report = purged.json()["deleted"]
    mine = {k.split("/", 1)[1]: v for k, v in report.items() if k.startswith(f"{retailer}/")}
    assert mine["bigtable:shopper_events"] == 1
    assert mine["bigtable:shopper_state"] == 1
    assert mine["bigtable:experience_trees"] == 1
    assert mine["bigtable:rejected_events"] == 1
    assert mine["bigquery:dead_letters"] == 1
    assert mine["firestore:rewards/claims"] == 1
    assert mine["firestore:rewards/plays"] == 1
    for planned in purgeable:
        assert mine[planned.name] == 1, planned.name

    # Exactly the young records remain, in every store.
    assert {r.row_key for r in (store.lookup([r.id_key for r in records.values()])).values()} == {
        records["young"].row_key
    }
    stored = list(
        instance.table("shopper_events").read_rows(
            start_key=shopper_prefix(retailer, shopper).encode()
        )
    )
    left = [
        r.row_key.decode()
        for r in stored
        if r.row_key.decode().startswith(shopper_prefix(retailer, shopper))
    ]
    assert left == [records["young"].row_key]
    for bt_table in (SHOPPER_STATE_TABLE, EXPERIENCE_TREES_TABLE, REJECTED_EVENTS_TABLE):
        found_keys = {
            r.row_key.decode()
            for r in instance.table(bt_table).read_rows()
            if retailer in r.row_key.decode()
        }
        expected = {
            SHOPPER_STATE_TABLE: {shopper_prefix(retailer, shopper)},
            EXPERIENCE_TREES_TABLE: {f"{retailer}#{shopper}", f"{retailer}#"},
            REJECTED_EVENTS_TABLE: {f"{retailer}#{reverse_micros(young)}#0000#young"},
        }[bt_table]
        assert found_keys == expected, bt_table
    for planned in purgeable:
        table = tables[planned.target]
        left_rows = query(
            stack,
            f"SELECT run_id AS tag FROM `{project}.{table.dataset}.{table.name}` "
            "WHERE retailer_id = @r"
            if planned.kind == "bigquery_runs"
            else f"SELECT IF({table.partition_field} >= TIMESTAMP(@cut), 'young', 'old') "
            f"AS tag FROM `{project}.{table.dataset}.{table.name}` WHERE retailer_id = @r",
            r=retailer,
            **(
                {}
                if planned.kind == "bigquery_runs"
                else {"cut": (now - timedelta(days=PERIOD_DAYS)).isoformat()}
            ),
        )
        assert [r["tag"].split("-")[0] for r in left_rows] == ["young"], planned.name
    assert [
        d.id for d in vault.where(filter=FieldFilter("retailer_id", "==", retailer)).stream()
    ] == [f"{unique}-young"]
    assert plays.get(f"{unique}-old") is None and plays.get(f"{unique}-young") is not None

    again = requests.post(f"{stack['PRIVACY_MAINTENANCE_URL']}/purge", timeout=600).json()
    assert sum(v for k, v in again["deleted"].items() if k.startswith(f"{retailer}/")) == 0
    audit = (
        firestore.collection("privacy_audit")
        .where(filter=FieldFilter("retailer_id", "==", retailer))
        .stream()
    )
    records_audited = [a.to_dict() or {} for a in audit]
    assert len(records_audited) == 2 * len(store_plan())
    assert {a["kind"] for a in records_audited} == {"purge"}


def sink_write(
    bigquery: Any, project: str, table: Any, tag: str, moment: datetime, message: Any
) -> int:
    sink = BigQueryReadModelSink(bigquery, project, [table])
    data = base64.b64encode(json.dumps(message).encode()).decode()
    return sink.write(
        table.name,
        [
            {
                "row_id": f"{tag}-{uuid.uuid4().hex}",
                "message_id": uuid.uuid4().hex,
                "source": "test",
                "reason": "test",
                "data_base64": data,
                "dead_lettered_at": moment.isoformat(),
            }
        ],
    )
