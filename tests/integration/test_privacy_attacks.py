"""Attacks on privacy and trust, black-box against the running stack (issue: "what an
attacker with the source found"): each failed before its fix."""

from __future__ import annotations

import stat
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from emulators.config import StackSettings
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.decisions.bigtable_state import BigtableTrees
from shared.freezer.read_models import row_id
from shared.platform import clients
from shared.system.resources import BIGTABLE_INSTANCE
from tests.factories import event
from tests.integration.test_ingest_api import shopper_rows
from tests.integration.test_privacy import _erasure, _requested, _swept_until_done
from tests.integration.test_rewards import firestore, game, play, token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def key(stack_settings: StackSettings, stack: dict[str, str]) -> bytes:
    return (stack_settings.local_dir / "play-signing-key").read_text().strip().encode()


@pytest.fixture(autouse=True)
def _game_removed(stack: dict[str, str], unique: str) -> Any:
    yield
    FirestoreCampaignStore(firestore(stack)).delete(f"game-{unique}")


def test_the_stack_env_and_every_key_file_are_the_owners_only(
    stack: dict[str, str], stack_settings: StackSettings
) -> None:
    files = [stack_settings.env_file] + [
        stack_settings.local_dir / name
        for name in (
            "demo-api-key",
            "demo-publishable-key",
            "demo-csm-key",
            "play-signing-key",
            "shopper-hash-key",
            "shopper-identity-key",
        )
    ]
    for path in files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path.name}: {oct(mode)}"


def test_a_paused_archived_or_ended_game_pays_nothing(
    stack: dict[str, str], unique: str, key: bytes
) -> None:
    campaign = game(stack, unique, odds=1.0)
    store = FirestoreCampaignStore(firestore(stack))
    retailer = stack["DEMO_RETAILER_ID"]
    past = datetime.now(UTC) - timedelta(days=1)
    changes: list[dict[str, Any]] = [
        {"status": "paused"},
        {"status": "archived"},
        {"starts_at": past - timedelta(days=9), "ends_at": past},
    ]
    for n, change in enumerate(changes):
        store.put(campaign.model_copy(update=change))
        answer = play(stack, token(key, campaign, f"o-{n}-{unique}", retailer=retailer))
        assert answer.status_code == 409, (change, answer.text)
        assert answer.json()["error"]["code"] == "campaign_not_playable", change
    store.put(campaign)
    answer = play(stack, token(key, campaign, f"o-live-{unique}", retailer=retailer))
    assert answer.status_code == 201 and answer.json()["outcome"] == "won", answer.text


def test_an_erased_shoppers_order_is_never_drawn_again(
    stack: dict[str, str], unique: str, key: bytes
) -> None:
    """The erasure deletes the play (it names the shopper); a keyed hash of its order stays,
    so the same token cannot draw again."""
    campaign = game(stack, unique, odds=1.0)
    shopper = f"erased-player-{unique}"
    granted = token(
        key, campaign, f"o-{unique}", retailer=stack["DEMO_RETAILER_ID"], shopper=shopper
    )
    first = play(stack, granted)
    assert first.status_code == 201 and first.json()["outcome"] == "won", first.text
    receipt = _erasure(stack, stack["DEMO_API_KEY"], shopper)
    assert receipt["receipts"]["firestore:rewards/plays"]["deleted"] == 1, receipt
    again = play(stack, granted)
    # Refused by the shopper's erasure mark (a token lives 7 days, the mark 8); the order's
    # keyed hash stays beyond both, so the order is never drawn again.
    assert again.status_code == 403, again.text
    assert again.json()["error"]["code"] == "shopper_suppressed"
    from shared.rewards.game import order_key_of, play_id_of

    played = play_id_of(stack["DEMO_RETAILER_ID"], campaign.campaign_id, f"o-{unique}")
    order_key = order_key_of(key, played)
    tombstone = firestore(stack, "rewards").collection("played_orders").document(order_key).get()
    assert tombstone.exists, "no keyed hash of the erased play's order"
    tombstones = firestore(stack, "rewards").collection("played_orders").stream()
    assert all("shopper_id" not in (t.to_dict() or {}) for t in tombstones)


def test_an_objection_stops_personalization_and_erases_what_was_held(
    stack: dict[str, str], unique: str
) -> None:
    """Before: an objection only blocked ingest; the shopper's live state, personal tree
    and current experiences kept being served from what was held."""
    from tests.integration.test_decisions import experiences, put_personal_tree, wait_for_answer
    from tests.integration.test_ingest_api import post

    shopper = f"objector-{unique}"
    put_personal_tree(stack, shopper)
    sent = event("product_added_to_basket", shopper)
    assert post(stack, [sent]).json()["accepted"] == 1
    wait_for_answer(stack, shopper, sent["event_id"])  # decided: experiences are served
    headers = {"X-Api-Key": stack["DEMO_API_KEY"], "Content-Type": "application/json"}
    objected = requests.post(
        f"{stack['ERASURE_URL']}/v1/suppressions",
        json={"shopper_id": shopper},
        headers=headers,
        timeout=30,
    )
    assert objected.status_code == 201, objected.text
    assert objected.json()["erasure_request_id"] in objected.headers["Location"]
    _swept_until_done(stack, stack["DEMO_API_KEY"], objected.headers["Location"])
    answer = experiences(stack, shopper)
    assert answer.status_code == 404, answer.text  # no state, no experiences served
    retailer = stack["DEMO_RETAILER_ID"]
    trees = BigtableTrees(clients.bigtable_client(stack["GOOGLE_CLOUD_PROJECT"]), BIGTABLE_INSTANCE)
    assert trees.personal([(retailer, shopper)]) == {}
    assert shopper_rows(stack, retailer, shopper) == []
    # Ingest re-reads the suppression list at most every 30 s (INGEST_SUPPRESSION_CACHE_TTL_S).
    deadline = time.monotonic() + 40
    while True:
        later = post(stack, [event("page_viewed", shopper)]).json()
        codes = [r["reasons"][0]["code"] for r in later["rejected"]]
        if codes == ["shopper_suppressed"]:
            break
        assert time.monotonic() < deadline, later
        time.sleep(2)


def test_a_flood_of_erasure_requests_joins_one_and_is_rate_limited(
    stack: dict[str, str], unique: str, retailer_key: Any
) -> None:
    """Before: every request was queued (no de-duplication, no limit), and each sweep read
    them all."""
    key = retailer_key(f"flood-{unique}")
    headers = {"X-Api-Key": key, "Content-Type": "application/json"}
    answers = [
        requests.post(
            f"{stack['ERASURE_URL']}/v1/erasure-requests",
            json={"shopper_id": f"flooded-{unique}"},
            headers=headers,
            timeout=30,
        )
        for _ in range(25)
    ]
    statuses = [a.status_code for a in answers]
    accepted = {a.json()["request_id"] for a in answers if a.status_code == 202}
    assert len(accepted) == 1, statuses  # one running request per shopper
    limited = [a for a in answers if a.status_code == 429]
    assert limited, statuses  # 10 a second per retailer, one second of burst
    assert limited[0].json()["error"]["code"] == "rate_limited"
    assert int(limited[0].headers["Retry-After"]) >= 1


def test_no_shopper_id_reaches_a_url_or_a_log(
    stack: dict[str, str], stack_settings: StackSettings, unique: str
) -> None:
    """Request logs keep URLs, and no erasure reaches logs: the experiences API takes the
    shopper in a header (its old path ``/v1/shoppers/{id}/experiences`` is gone), and no
    function logs a shopper id."""
    from tests.integration.test_decisions import experiences, put_personal_tree, wait_for_answer
    from tests.integration.test_ingest_api import post

    shopper = f"logged-{unique}"
    put_personal_tree(stack, shopper)
    sent = event("product_added_to_basket", shopper)
    assert post(stack, [sent]).json()["accepted"] == 1
    wait_for_answer(stack, shopper, sent["event_id"])
    assert experiences(stack, shopper).status_code == 200
    old = requests.get(
        f"{stack['EXPERIENCES_URL']}/v1/shoppers/{shopper}/experiences",
        headers={"X-Api-Key": stack["DEMO_API_KEY"]},
        timeout=30,
    )
    assert old.status_code == 404
    time.sleep(1)  # the last log lines
    logged = {
        path.name
        for path in stack_settings.logs_dir.glob("*.log")
        if shopper.encode() in path.read_bytes()
    }
    assert logged == set(), logged


def _on_the_topic(stack: dict[str, str], events: list[tuple[dict[str, Any], datetime]]) -> None:
    """Publish events as ingest did at ``ingested_at`` (what a backlog, a worker's batch or
    a redelivery still carries), in order, with their shopper's ordering key."""
    from shared.contract.events import validate_event
    from shared.ingestion.pubsub_publisher import PubSubEventPublisher
    from shared.ingestion.service import make_record, message_head
    from shared.system.resources import SHOPPER_EVENTS_TOPIC

    retailer = stack["DEMO_RETAILER_ID"]
    records = []
    for raw, ingested_at in events:
        parsed = validate_event(raw)
        assert not isinstance(parsed, list), parsed
        records.append(make_record(retailer, parsed, message_head(retailer, ingested_at)))
    topic = clients.topic_path(stack["GOOGLE_CLOUD_PROJECT"], SHOPPER_EVENTS_TOPIC)
    PubSubEventPublisher(clients.publisher_api(), topic).publish(records)


def _states(stack: dict[str, str]) -> Any:
    from shared.decisions.bigtable_state import BigtableShopperStates

    bigtable = clients.bigtable_client(stack["GOOGLE_CLOUD_PROJECT"])
    return BigtableShopperStates(bigtable, BIGTABLE_INSTANCE)


def test_an_objection_stops_every_personalization_at_once(
    stack: dict[str, str], unique: str, key: bytes
) -> None:
    """Before: between the objection and its erasure's sweep, the shopper's experiences were
    still served, their events in flight still decided, their play tokens still drew."""
    from tests.integration.test_decisions import experiences, put_personal_tree, wait_for_answer
    from tests.integration.test_ingest_api import post

    shopper = f"objector-now-{unique}"
    retailer = stack["DEMO_RETAILER_ID"]
    put_personal_tree(stack, shopper)
    sent = event("product_added_to_basket", shopper)
    assert post(stack, [sent]).json()["accepted"] == 1
    wait_for_answer(stack, shopper, sent["event_id"])
    granted = token(
        key, game(stack, unique, odds=1.0), f"o-{unique}", retailer=retailer, shopper=shopper
    )
    objected = requests.post(
        f"{stack['ERASURE_URL']}/v1/suppressions",
        json={"shopper_id": shopper},
        headers={"X-Api-Key": stack["DEMO_API_KEY"], "Content-Type": "application/json"},
        timeout=30,
    )
    assert objected.status_code == 201, objected.text
    # At once: no sweep has run for it (the sweep's first pass erases what was held).
    answer = experiences(stack, shopper)
    assert answer.status_code == 404, answer.text
    refused = play(stack, granted)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "shopper_suppressed"
    in_flight = event("product_added_to_basket", shopper)
    _on_the_topic(stack, [(in_flight, datetime.now(UTC))])  # ingested after the objection
    states = _states(stack)
    deadline = time.monotonic() + 5  # decided within ~0.1 s when nothing stops it
    while time.monotonic() < deadline:
        decided, _ = states.after(retailer, shopper, in_flight["event_id"])
        assert not decided, "the decider decided an objected shopper's event"
        time.sleep(0.2)
    _swept_until_done(stack, stack["DEMO_API_KEY"], objected.headers["Location"])


def test_events_in_flight_during_an_erasure_write_nothing_back(
    stack: dict[str, str], unique: str
) -> None:
    """Before: an erased shopper's events still on the topic (a backlog, a batch being
    worked on, a redelivery) reached the workers after the erasure was done and wrote the
    shopper's state, read models and decisions back. After the erasure the shopper may shop
    again: a new event is kept."""
    from tests.integration.test_decisions import put_personal_tree
    from tests.integration.test_freezer import rows_of, wait_for_rows

    shopper = f"in-flight-{unique}"
    retailer = stack["DEMO_RETAILER_ID"]
    put_personal_tree(stack, shopper)
    before = datetime.now(UTC)
    in_flight = [event("search_performed", shopper, query=f"q{n}") for n in range(3)]
    receipt = _erasure(stack, stack["DEMO_API_KEY"], shopper)
    assert receipt["status"] == "done" and receipt["passes"] == 2, receipt
    put_personal_tree(stack, shopper)  # a tree compiled meanwhile: decisions would be made
    after = event("search_performed", shopper, query="new")
    _on_the_topic(stack, [*((e, before) for e in in_flight), (after, datetime.now(UTC))])
    # One ordering key: once the new event is frozen and decided, the older ones were handled.
    assert wait_for_rows(stack, [shopper], {"searches": 1}) == {"searches": 1}
    states = _states(stack)
    deadline = time.monotonic() + 30
    while not states.after(retailer, shopper, after["event_id"])[0]:
        assert time.monotonic() < deadline, "the new event was never decided"
        time.sleep(0.2)
    frozen = [r["row_id"] for r in rows_of(stack, "searches", [shopper])]
    assert frozen == [row_id(retailer, after["event_id"])]
    for old in in_flight:
        assert not states.after(retailer, shopper, old["event_id"])[0], "state written back"
    decided = wait_for_rows(stack, [shopper], {"decisions": 1}, timeout_s=30)
    assert decided == {"decisions": 1}, decided  # the new event's only
    assert [r["event_id"] for r in rows_of(stack, "decisions", [shopper])] == [after["event_id"]]


def test_an_erasure_waits_for_the_nightly_run_in_progress(
    stack: dict[str, str], unique: str
) -> None:
    """Before: a nightly run that read the shopper's rows before the erasure wrote its
    feature tables after the last pass, and the erasure said "done" with the shopper's
    rows still in ``nightly_shoppers``. Now the last pass waits for the run to end."""
    from tests.integration.test_freezer import query

    shopper, retailer = f"nightly-{unique}", stack["DEMO_RETAILER_ID"]
    headers = {"X-Api-Key": stack["DEMO_API_KEY"], "Content-Type": "application/json"}
    runs = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"]).collection("nightly_runs")
    run = runs.document(f"test-run-{unique}")
    run.set({"run_id": run.id, "status": "running", "started_at": datetime.now(UTC).isoformat()})
    table = f"`{stack['GOOGLE_CLOUD_PROJECT']}.cartwise.nightly_shoppers`"
    try:
        path = _requested(stack, stack["DEMO_API_KEY"], shopper)
        settled = time.monotonic() + 21  # PRIVACY_ERASURE_SETTLE_S is 20 s locally
        sweep = f"{stack['PRIVACY_MAINTENANCE_URL']}/erasures/run"
        assert requests.post(sweep, timeout=600).status_code == 200  # the first pass
        # The run, having read the shopper's rows before that pass, writes its features.
        query(
            stack,
            f"INSERT INTO {table} (run_id, boundary, role, retailer_id, shopper_id) "
            "VALUES (@run, CURRENT_TIMESTAMP(), 'score', @r, @s)",
            run=run.id,
            r=retailer,
            s=shopper,
        )
        time.sleep(max(0.0, settled - time.monotonic()))
        for _ in range(2):  # past the settle: sweeps make no last pass while the run runs
            assert requests.post(sweep, timeout=600).status_code == 200
        waiting = requests.get(stack["ERASURE_URL"] + path, headers=headers, timeout=30).json()
        assert waiting["status"] == "running", waiting
        assert waiting["waiting_for"] == f"nightly run {run.id} in progress", waiting
        run.update({"status": "published", "finished_at": datetime.now(UTC).isoformat()})
        done = _swept_until_done(stack, stack["DEMO_API_KEY"], path)
        assert done["waiting_for"] is None
        sql = f"SELECT shopper_id FROM {table} WHERE shopper_id = @s"
        left = query(stack, sql, s=shopper)
        assert left == [], "the run's rows outlived the erasure"
    finally:
        run.delete()
