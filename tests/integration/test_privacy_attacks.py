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
from shared.platform import clients
from shared.system.resources import BIGTABLE_INSTANCE
from tests.factories import event
from tests.integration.test_ingest_api import shopper_rows
from tests.integration.test_privacy import _erasure, _swept_until_done
from tests.integration.test_rewards import firestore, game, play, token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def key(stack_settings: StackSettings, stack: dict[str, str]) -> bytes:
    return (stack_settings.local_dir / "play-signing-key").read_text().strip().encode()


@pytest.fixture(autouse=True)
def _game_removed(stack: dict[str, str], unique: str) -> Any:
    yield
    firestore(stack).collection("campaigns").document(f"game-{unique}").delete()


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
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "order_already_played"
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
