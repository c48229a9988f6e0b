"""The rewards game on the local stack: POST /v1/plays and /claim on the ``plays`` function,
voids from ``shopper-events`` (void_plays), plays into BigQuery (freeze_plays).

Proves: the odds hold over hundreds of plays; the budget is never exceeded by concurrent
plays and the ledger matches; every token attack is refused; a cancelled order voids its
win and frees its slot; the e-mail address lives in the rewards database only."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from emulators.config import StackSettings
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.campaigns.model import Campaign
from shared.decisions.play_tokens import VALIDITY, PlayGrant, sign
from shared.platform import clients
from shared.rewards import ledger_cli as rewards_cli
from shared.rewards.firestore_plays import (
    FirestoreBudgetSlots,
    FirestorePlayStore,
    FirestoreVoidedOrders,
)
from shared.rewards.firestore_vault import FirestoreRewardsVault
from shared.rewards.game import Play, WinEntry, play_id_of, token_hash
from shared.system.resources import REWARDS_DATABASE
from tests.factories import event
from tests.integration.test_freezer import query
from tests.integration.test_ingest_api import post
from tests.unit.test_rewards import Z, wilson

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def key(stack_settings: StackSettings, stack: dict[str, str]) -> bytes:
    return (stack_settings.local_dir / "play-signing-key").read_text().strip().encode()


def firestore(stack: dict[str, str], database: str = "(default)") -> Any:
    return clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"], database)


@pytest.fixture(autouse=True)
def _game_removed(stack: dict[str, str], unique: str) -> Iterator[None]:
    """Each test's game (``game-{unique}``, active for 30 days on the demo retailer) is
    removed after it: a later test or ``make demo`` compiling the demo retailer's default
    tree must not find it."""
    yield
    FirestoreCampaignStore(firestore(stack)).delete(f"game-{unique}")


def game(
    stack: dict[str, str],
    unique: str,
    *,
    odds: float,
    prize: str = "10",
    budget: str = "100",
    retailers: list[str] | None = None,
) -> Campaign:
    now = datetime.now(UTC)
    campaign = Campaign(
        campaign_id=f"game-{unique}",
        name="Play and win",
        retailer_ids=retailers or [stack["DEMO_RETAILER_ID"]],
        experience_type="gamified_promotion",
        status="active",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
        targeted_brands=["B"],
        budget=Decimal(budget),
        win_probability=odds,
        prize_value=Decimal(prize),
    )
    FirestoreCampaignStore(firestore(stack)).put(campaign)
    return campaign


def token(
    key: bytes,
    campaign: Campaign,
    order: str,
    *,
    retailer: str,
    shopper: str = "player-1",
    expires_at: datetime | None = None,
    experience: str | None = None,
) -> str:
    grant = PlayGrant(
        retailer_id=retailer,
        shopper_id=shopper,
        order_id=order,
        campaign_id=campaign.campaign_id,
        experience_id=experience or f"{campaign.campaign_id}:play",
        expires_at=expires_at or datetime.now(UTC) + VALIDITY,
    )
    return sign(grant, key)


def play(stack: dict[str, str], play_token: str, api_key: str | None = None) -> requests.Response:
    return requests.post(
        f"{stack['PLAYS_URL']}/v1/plays",
        headers={"X-Api-Key": stack["DEMO_API_KEY"] if api_key is None else api_key},
        json={"play_token": play_token},
        timeout=30,
    )


def claim(stack: dict[str, str], play_id: str, play_token: str, email: str) -> requests.Response:
    return requests.post(
        f"{stack['PLAYS_URL']}/v1/plays/{play_id}/claim",
        headers={"X-Api-Key": stack["DEMO_API_KEY"]},
        json={"play_token": play_token, "email": email},
        timeout=30,
    )


def wait_until(check: Callable[[], Any], timeout_s: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def bigquery_plays(stack: dict[str, str], campaign_id: str) -> list[dict[str, Any]]:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    return query(
        stack,
        f"SELECT * FROM `{project}.cartwise.plays` WHERE campaign_id = @c",
        c=campaign_id,
    )


def ledger(campaign_id: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert rewards_cli.main(["ledger", campaign_id]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_every_token_attack_is_refused_and_a_replay_gets_the_original_outcome(
    stack: dict[str, str], key: bytes, unique: str, retailer_key: Callable[[str], str]
) -> None:
    retailer = stack["DEMO_RETAILER_ID"]
    campaign = game(stack, unique, odds=0.5)
    order = f"o-{unique}"
    good = token(key, campaign, order, retailer=retailer)
    _, signature = good.split(".")
    tampered_payload = token(key, campaign, f"{order}-2", retailer=retailer).split(".")[0]
    other_key = retailer_key(f"other-{unique}")
    attacks = {
        "forged": (token(b"not-the-key-" * 3, campaign, order, retailer=retailer), None),
        "tampered": (f"{tampered_payload}.{signature}", None),
        "expired": (
            token(key, campaign, order, retailer=retailer, expires_at=datetime.now(UTC)),
            None,
        ),
        "other retailer's key": (good, other_key),
        "malformed": ("garbage", None),
    }
    expected = {
        "forged": (403, "forged_token"),
        "tampered": (403, "forged_token"),
        "expired": (403, "expired_token"),
        "other retailer's key": (403, "wrong_retailer"),
        "malformed": (400, "invalid_token"),
    }
    for name, (attack, api_key) in attacks.items():
        response = play(stack, attack, api_key)
        assert (response.status_code, response.json()["error"]["code"]) == expected[name], name
    assert play(stack, good, "").status_code == 401
    play_id = play_id_of(retailer, campaign.campaign_id, order)
    plays = FirestorePlayStore(firestore(stack, REWARDS_DATABASE))
    assert plays.get(play_id) is None  # nothing refused was played

    first = play(stack, good)
    assert first.status_code == 201, first.text
    outcome = first.json()
    assert outcome["play_id"] == play_id and outcome["replayed"] is False
    replays = [play(stack, good) for _ in range(3)]
    assert {r.status_code for r in replays} == {200}
    for replay in replays:
        assert replay.json() == outcome | {"replayed": True}  # the original outcome, no draw
    # A different valid token for the same order (another experience) is refused.
    other = token(key, campaign, order, retailer=retailer, experience=f"{campaign.campaign_id}:x")
    response = play(stack, other)
    assert (response.status_code, response.json()["error"]["code"]) == (
        409,
        "order_already_played",
    )
    # The other retailer's token on the other retailer's key: the campaign is not theirs.
    theirs = token(key, campaign, order, retailer=f"other-{unique}")
    response = play(stack, theirs, other_key)
    assert (response.status_code, response.json()["error"]["code"]) == (
        409,
        "campaign_not_playable",
    )


def test_the_odds_hold_over_hundreds_of_plays(
    stack: dict[str, str], key: bytes, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    odds, n = 0.3, 300
    campaign = game(stack, unique, odds=odds, prize="1", budget="1000000")
    retailer = stack["DEMO_RETAILER_ID"]
    tokens = [token(key, campaign, f"o-{unique}-{i}", retailer=retailer) for i in range(n)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda t: play(stack, t), tokens))
    assert {a.status_code for a in answers} == {201}
    wins = sum(a.json()["outcome"] == "won" for a in answers)
    low, high = wilson(wins, n, Z)  # alpha 1e-6, two-sided
    assert low <= odds <= high, (wins, n, low, high)
    assert all(a.json()["reason"] == "drawn" for a in answers)
    found = ledger(campaign.campaign_id, capsys)
    assert found["wins_owed"] == wins and Decimal(found["owed"]) == wins
    rows = wait_until(
        lambda: (r := bigquery_plays(stack, campaign.campaign_id)) and len(r) == n and r,
        what="the plays in BigQuery",
    )
    assert sum(r["won"] for r in rows) == wins
    assert {r["play_id"] for r in rows} == {a.json()["play_id"] for a in answers}


def test_the_budget_holds_under_concurrent_plays_and_retries(
    stack: dict[str, str], key: bytes, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every draw wins (odds 1): 10 slots, 60 orders each played twice at once on 16
    threads; exactly 10 win, the ledger says so, and the decision engine is told."""
    campaign = game(stack, unique, odds=1.0, prize="10", budget="105")
    retailer = stack["DEMO_RETAILER_ID"]
    tokens = [token(key, campaign, f"o-{unique}-{i}", retailer=retailer) for i in range(60)]
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda t: play(stack, t), tokens + tokens[::-1]))
    elapsed = time.monotonic() - started
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    by_order: dict[str, set[str]] = {}
    for a in answers:
        body = a.json()
        by_order.setdefault(body["order_id"], set()).add(json.dumps(body | {"replayed": None}))
    assert all(len(v) == 1 for v in by_order.values())  # both requests: one outcome
    assert Counter(a.status_code for a in answers)[201] == 60  # one draw per order
    outcomes = [json.loads(next(iter(v))) for v in by_order.values()]
    wins = [o for o in outcomes if o["outcome"] == "won"]
    assert len(wins) == 10 and len(wins) * Decimal(10) <= Decimal(105)
    assert {o["reason"] for o in outcomes if o["outcome"] == "lost"} == {"budget_exhausted"}
    found = ledger(campaign.campaign_id, capsys)
    assert (found["slots"], found["wins_owed"], found["owed"]) == (10, 10, "100")
    assert found["remaining"] == "5" and found["exhausted"] is True
    slots = FirestoreBudgetSlots(firestore(stack, REWARDS_DATABASE))
    entries = slots.entries(campaign.campaign_id)
    assert sorted(e.slot for e in entries) == list(range(10))
    assert {e.play_id for e in entries} == {w["play_id"] for w in wins}
    stored = FirestoreCampaignStore(firestore(stack)).get(campaign.campaign_id)
    assert stored is not None and stored.budget_exhausted
    print(f"\n120 requests (60 orders x2) on 16 threads in {elapsed:.2f}s")


def order_event(stack: dict[str, str], order: str, status: str, shopper: str) -> dict[str, Any]:
    raw = event("order_status_changed", shopper, order_id=order, status=status)
    assert post(stack, [raw]).json()["accepted"] == 1
    return raw


def test_a_cancelled_order_voids_its_win_and_frees_its_slot(
    stack: dict[str, str], key: bytes, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = game(stack, unique, odds=1.0, prize="10", budget="20")
    retailer = stack["DEMO_RETAILER_ID"]
    shopper = f"player-{unique}"
    tokens = {
        name: token(key, campaign, f"o-{unique}-{name}", retailer=retailer, shopper=shopper)
        for name in ("a", "b", "c", "d", "e")
    }
    assert play(stack, tokens["a"]).json()["outcome"] == "won"
    assert play(stack, tokens["b"]).json()["outcome"] == "won"
    lost = play(stack, tokens["c"]).json()
    assert (lost["outcome"], lost["reason"]) == ("lost", "budget_exhausted")
    campaigns = FirestoreCampaignStore(firestore(stack))
    assert campaigns.get(campaign.campaign_id).budget_exhausted  # type: ignore[union-attr]

    order_event(stack, f"o-{unique}-b", "delivered", shopper)  # not a void
    order_event(stack, f"o-{unique}-a", "cancelled", shopper)
    plays = FirestorePlayStore(firestore(stack, REWARDS_DATABASE))
    voided = wait_until(
        lambda: (
            (p := plays.get(play_id_of(retailer, campaign.campaign_id, f"o-{unique}-a")))
            and p[0].voided
            and p[0]
        ),
        what="the void",
    )
    assert voided.won and voided.voided_at is not None
    # The slot is freed: the ledger owes one prize, the campaign is playable again.
    wait_until(
        lambda: not campaigns.get(campaign.campaign_id).budget_exhausted,  # type: ignore[union-attr]
        what="budget_exhausted cleared",
    )
    found = ledger(campaign.campaign_id, capsys)
    assert (found["wins_owed"], found["owed"], found["exhausted"]) == (1, "10", False)
    replay = play(stack, tokens["a"]).json()
    assert replay["outcome"] == "won" and replay["voided"] is True  # still its outcome
    assert play(stack, tokens["d"]).json()["outcome"] == "won"  # the freed slot pays d
    # A redelivered cancellation changes nothing; a cancelled order cannot be played.
    order_event(stack, f"o-{unique}-a", "cancelled", shopper)
    order_event(stack, f"o-{unique}-e", "returned", shopper)
    orders = FirestoreVoidedOrders(firestore(stack, REWARDS_DATABASE))
    wait_until(lambda: orders.voided(retailer, f"o-{unique}-e"), what="e's return seen")
    response = play(stack, tokens["e"])
    assert response.json()["error"]["code"] == "order_voided"
    found = ledger(campaign.campaign_id, capsys)
    assert (found["wins_owed"], found["owed"], found["exhausted"]) == (2, "20", True)
    rows = wait_until(
        lambda: (
            (r := bigquery_plays(stack, campaign.campaign_id))
            and len(r) == 4
            and any(x["voided"] for x in r)
            and r
        ),
        what="the void in BigQuery",
    )
    assert [r["order_id"] for r in rows if r["voided"]] == [f"o-{unique}-a"]
    assert all(r["voided_at"] is None for r in rows if not r["voided"])


def scan_firestore(client: Any) -> list[tuple[str, str]]:
    """Every document of a database, as (path, JSON text), subcollections included (a
    recursive query per top-level collection: all its descendants in one stream)."""
    return [
        (snapshot.reference.path, json.dumps(snapshot.to_dict(), default=str))
        for collection in client.collections()
        for snapshot in collection.recursive().stream()
    ]


def test_the_email_lives_in_the_rewards_database_only_and_wins_get_paid(
    stack: dict[str, str], key: bytes, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = game(stack, unique, odds=1.0, prize="10", budget="100")
    retailer = stack["DEMO_RETAILER_ID"]
    shopper = f"winner-{unique}"
    email = f"winner.{unique}@example.com"
    won_token = token(key, campaign, f"o-{unique}", retailer=retailer, shopper=shopper)
    won = play(stack, won_token).json()
    assert won["outcome"] == "won"

    capsys.readouterr()
    assert rewards_cli.main(["pay", won["play_id"]]) == 1  # nobody to pay yet
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "not_claimed"

    refused = {
        "invalid_email": claim(stack, won["play_id"], won_token, "not-an-address"),
        "token_mismatch": claim(
            stack,
            won["play_id"],
            token(key, campaign, f"o-{unique}-x", retailer=retailer),
            email,
        ),
    }
    for code, response in refused.items():
        assert response.json()["error"]["code"] == code, response.text
    answer = claim(stack, won["play_id"], won_token, email)
    assert answer.status_code == 200 and answer.json()["claimed"] is True
    assert claim(stack, won["play_id"], won_token, email).status_code == 200  # a retry
    other = claim(stack, won["play_id"], won_token, f"x{email}")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "already_claimed")

    capsys.readouterr()
    assert rewards_cli.main(["payable", campaign.campaign_id]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"play_id": won["play_id"], "prize_value": "10", "email": email}
    ]
    assert rewards_cli.main(["pay", won["play_id"]]) == 0
    assert rewards_cli.main(["pay", won["play_id"]]) == 0  # idempotent
    found = ledger(campaign.campaign_id, capsys)
    assert (found["wins_paid"], found["paid"], found["owed"]) == (1, "10", "0")
    # A paid win is not voided by a later return. The same order also won, unpaid, in a
    # second game: void_plays handles every play of the order in one call and publishes
    # what it voided at the end of it (shared/rewards/game.py: void_order), so once the
    # second play is frozen voided, the return has been handled for the paid one too.
    second = game(stack, f"{unique}-b", odds=1.0, prize="1", budget="10")
    try:
        unpaid = play(stack, token(key, second, f"o-{unique}", retailer=retailer, shopper=shopper))
        assert unpaid.json()["outcome"] == "won", unpaid.text
        order_event(stack, f"o-{unique}", "returned", shopper)
        wait_until(
            lambda: any(r["voided"] for r in bigquery_plays(stack, second.campaign_id)),
            what="the return handled (the unpaid win voided and published)",
        )
    finally:
        FirestoreCampaignStore(firestore(stack)).delete(second.campaign_id)
    plays = FirestorePlayStore(firestore(stack, REWARDS_DATABASE))
    stored = plays.get(won["play_id"])
    assert stored is not None and stored[0].paid and not stored[0].voided

    rows = wait_until(
        lambda: (r := bigquery_plays(stack, campaign.campaign_id)) and r[0]["paid"] and r,
        what="the payment in BigQuery",
    )
    assert not rows[0]["voided"]

    default_docs = scan_firestore(firestore(stack))
    assert default_docs, "the default database was scanned"
    assert [path for path, text in default_docs if email in text] == []
    rewards_docs = scan_firestore(firestore(stack, REWARDS_DATABASE))
    assert [path for path, text in rewards_docs if email in text] == [f"claims/{won['play_id']}"]
    project = stack["GOOGLE_CLOUD_PROJECT"]
    everything = query(stack, f"SELECT * FROM `{project}.cartwise.plays`")
    assert everything and not [r for r in everything if email in json.dumps(r, default=str)]
    stored = plays.get(won["play_id"])
    assert stored is not None and stored[0].paid and not stored[0].voided


def test_erasure_and_retention_hooks_of_the_plays_store_and_the_vault(
    stack: dict[str, str], key: bytes, unique: str, retailer_key: Callable[[str], str]
) -> None:
    retailer = f"erase-{unique}"  # its own retailer: the purges below touch no one else
    api_key = retailer_key(retailer)
    campaign = game(stack, unique, odds=1.0, prize="1", budget="100", retailers=[retailer])
    shopper = f"erased-{unique}"

    def played(order: str, who: str) -> str:
        play_token = token(key, campaign, order, retailer=retailer, shopper=who)
        answer = play(stack, play_token, api_key).json()
        response = requests.post(
            f"{stack['PLAYS_URL']}/v1/plays/{answer['play_id']}/claim",
            headers={"X-Api-Key": api_key},
            json={"play_token": play_token, "email": f"{who}@example.com"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(answer["play_id"])

    erased = [played(f"o-{unique}-{i}", shopper) for i in range(3)]
    kept = played(f"o-{unique}-k", f"kept-{unique}")

    rewards = firestore(stack, REWARDS_DATABASE)
    plays, vault = FirestorePlayStore(rewards), FirestoreRewardsVault(rewards)
    past, future = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
    assert plays.purge_before(retailer, past) == 0
    assert vault.purge_before(retailer, past) == 0
    assert vault.erase_shopper(retailer, shopper) == 3
    assert vault.erase_shopper(retailer, shopper) == 0
    assert vault.email_for(erased[0]) is None
    assert plays.erase_shopper(retailer, shopper) == 3
    assert plays.get(erased[0]) is None
    assert plays.get(kept) is not None and vault.email_for(kept) is not None
    assert plays.erase_shopper(f"other-{unique}", f"kept-{unique}") == 0
    assert plays.purge_before(retailer, future) == 1
    assert vault.purge_before(retailer, future) == 1
    assert plays.get(kept) is None and vault.email_for(kept) is None


def test_the_decision_engines_invitation_is_playable_end_to_end(
    stack: dict[str, str], key: bytes, unique: str
) -> None:
    """cart_validated -> decide_events signs a play token -> the tracker reads it from the
    experiences endpoint -> POST /v1/plays with it (the two functions share the key)."""
    from tests.integration.test_decisions import put_personal_tree, wait_for_answer

    retailer = stack["DEMO_RETAILER_ID"]
    shopper = f"e2e-{unique}"
    campaign = game(stack, unique, odds=1.0, prize="5", budget="50")
    now = datetime.now(UTC)
    put_personal_tree(stack, shopper, play_campaign=campaign.campaign_id)
    pasta = {"product_id": "pasta-1", "quantity": 2, "unit_price": "1.50", "brand": "B"}
    sauce = {"product_id": "sauce-1", "quantity": 1, "unit_price": "3.00", "brand": "B"}
    start = now - timedelta(minutes=2)
    steps = [
        ("product_added_to_basket", pasta),
        ("product_added_to_basket", sauce),
        ("cart_validated", {"order_id": f"o-{unique}", "total": "6.00", "lines": [pasta, sauce]}),
    ]
    answer: dict[str, Any] = {}
    for seconds, (kind, payload) in enumerate(steps):
        raw = event(kind, shopper, start + timedelta(seconds=10 * seconds))
        raw["payload"] = payload
        assert post(stack, [raw]).json()["accepted"] == 1
        answer = wait_for_answer(stack, shopper, raw["event_id"])
    invitation = {e["experience_id"]: e["details"] for e in answer["experiences"]}["play"]
    played = play(stack, invitation["play_token"])
    assert played.status_code == 201, played.text
    assert played.json()["order_id"] == f"o-{unique}"
    assert played.json()["outcome"] == "won"
    assert played.json()["play_id"] == play_id_of(retailer, campaign.campaign_id, f"o-{unique}")


def test_the_openapi_document_is_published(stack: dict[str, str]) -> None:
    spec = requests.get(f"{stack['PLAYS_URL']}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.")
    assert {"/v1/plays", "/v1/plays/{play_id}/claim"} <= set(spec["paths"])


def test_a_play_interrupted_after_its_slot_was_taken_is_finished_with_that_slot(
    stack: dict[str, str], key: bytes, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crash between the slot claim and the outcome's write leaves a pending play and
    a slot held by its play_id: the retry finishes the same draw with the same slot."""
    retailer = stack["DEMO_RETAILER_ID"]
    campaign = game(stack, unique, odds=1.0, prize="10", budget="30")
    order = f"o-{unique}"
    play_token = token(key, campaign, order, retailer=retailer)
    play_id = play_id_of(retailer, campaign.campaign_id, order)
    rewards = firestore(stack, REWARDS_DATABASE)
    now = datetime.now(UTC)
    pending = Play(
        play_id=play_id,
        retailer_id=retailer,
        shopper_id="player-1",
        campaign_id=campaign.campaign_id,
        experience_id=f"{campaign.campaign_id}:play",
        order_id=order,
        token_sha256=token_hash(play_token),
        played_at=now,
        drawn=True,
    )
    assert FirestorePlayStore(rewards).create(pending) is not None
    slots = FirestoreBudgetSlots(rewards)
    entry = WinEntry(
        campaign_id=campaign.campaign_id,
        slot=-1,
        play_id=play_id,
        prize_value=Decimal(10),
        won_at=now,
    )
    held = slots.claim(entry, 3)
    assert held is not None

    answer = play(stack, play_token)
    assert answer.status_code == 200 and answer.json()["replayed"] is True  # not a new draw
    assert answer.json()["outcome"] == "won"
    stored = FirestorePlayStore(rewards).get(play_id)
    assert stored is not None and stored[0].slot == held
    assert [e.play_id for e in slots.entries(campaign.campaign_id)] == [play_id]
    assert ledger(campaign.campaign_id, capsys)["wins_owed"] == 1


def test_a_message_that_is_no_shopper_event_is_dead_lettered_by_void_plays(
    stack: dict[str, str], unique: str
) -> None:
    from google.pubsub_v1.types import PubsubMessage

    from shared.system.resources import SHOPPER_EVENTS_TOPIC

    project = stack["GOOGLE_CLOUD_PROJECT"]
    published = clients.publisher_api().publish(
        topic=clients.topic_path(project, SHOPPER_EVENTS_TOPIC),
        messages=[
            PubsubMessage(
                data=json.dumps({"not": unique}).encode(),
                attributes={"type": "order_status_changed"},
            )
        ],
        timeout=10,
    )
    row_id = f"void-plays:{published.message_ids[0]}"
    rows = wait_until(
        lambda: query(
            stack,
            f"SELECT source, reason FROM `{project}.cartwise.dead_letters` WHERE row_id = @r",
            r=row_id,
        ),
        what="the dead letter",
    )
    assert rows[0]["source"] == "void-plays"
    assert rows[0]["reason"].startswith("not a shopper-event message")
