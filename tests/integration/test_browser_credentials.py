"""What a web page's key may and may not do, against the running functions (docs/INGEST.md,
"Keys"): CORS preflights, publishable keys bound to their origins, shopper signatures,
orders only from the back end's secret key, and experiences that wait for their event.

The demo retailer's publishable key (``DEMO_PUBLISHABLE_KEY``) lists the demo shop's
origin (``DEMO_SHOP_URL``); its back end signs shoppers with ``DEMO_IDENTITY_SECRET``.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from emulators.config import StackSettings
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.retailers.identity import shopper_signature
from tests.factories import event
from tests.integration.test_decisions import put_personal_tree
from tests.integration.test_ingest_api import post
from tests.integration.test_rewards import firestore, game, token

pytestmark = pytest.mark.integration

FOREIGN = "https://attacker.example"
TIMEOUT = 30


def page(stack: dict[str, str], **headers: str) -> dict[str, str]:
    """The headers a page of the demo shop sends with its publishable key."""
    return {"X-Api-Key": stack["DEMO_PUBLISHABLE_KEY"], "Origin": stack["DEMO_SHOP_URL"], **headers}


def signed(stack: dict[str, str], shopper: str, origin: str | None = None) -> dict[str, str]:
    headers = page(
        stack,
        **{
            "X-Shopper-Id": shopper,
            "X-Shopper-Signature": shopper_signature(stack["DEMO_IDENTITY_SECRET"], shopper),
        },
    )
    if origin is not None:
        headers["Origin"] = origin
    return headers


def code(answer: requests.Response) -> str:
    return str(answer.json()["error"]["code"])


def browser_apis(stack: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {
        "ingest": (f"{stack['INGEST_URL']}/v1/events", "POST"),
        "experiences": (f"{stack['EXPERIENCES_URL']}/v1/experiences", "GET"),
        "plays": (f"{stack['PLAYS_URL']}/v1/plays", "POST"),
    }


def test_a_preflight_is_answered_for_the_shops_origin_only(stack: dict[str, str]) -> None:
    for name, (url, method) in browser_apis(stack).items():
        asked = {
            "Origin": stack["DEMO_SHOP_URL"],
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,x-api-key",
        }
        answer = requests.options(url, headers=asked, timeout=TIMEOUT)
        assert answer.status_code == 204, (name, answer.status_code, answer.text)
        assert answer.headers["Access-Control-Allow-Origin"] == stack["DEMO_SHOP_URL"], name
        assert method in answer.headers["Access-Control-Allow-Methods"], name
        allowed = answer.headers["Access-Control-Allow-Headers"].lower()
        assert "x-api-key" in allowed and "x-shopper-signature" in allowed, name
        assert int(answer.headers["Access-Control-Max-Age"]) >= 600, name

        foreign = requests.options(url, headers={**asked, "Origin": FOREIGN}, timeout=TIMEOUT)
        assert foreign.status_code == 403, (name, foreign.text)
        assert "Access-Control-Allow-Origin" not in foreign.headers, name


def test_a_publishable_key_posts_behaviour_from_its_origin_only(
    stack: dict[str, str], unique: str
) -> None:
    shopper = f"page-{unique}"
    headers = {**page(stack), "Content-Type": "application/json"}
    url = f"{stack['INGEST_URL']}/v1/events"
    answer = requests.post(
        url, json={"events": [event("page_viewed", shopper)]}, headers=headers, timeout=TIMEOUT
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 1
    assert answer.headers["Access-Control-Allow-Origin"] == stack["DEMO_SHOP_URL"]

    foreign = requests.post(
        url,
        json={"events": [event("page_viewed", shopper)]},
        headers={**headers, "Origin": FOREIGN},
        timeout=TIMEOUT,
    )
    assert foreign.status_code == 403 and code(foreign) == "origin_not_allowed", foreign.text
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_a_beacon_carries_a_publishable_key_in_its_url_never_a_secret_one(
    stack: dict[str, str], unique: str
) -> None:
    url = f"{stack['INGEST_URL']}/v1/events"
    body = json.dumps({"events": [event("page_viewed", f"b-{unique}")]})
    beacon = {"Content-Type": "text/plain;charset=UTF-8", "Origin": stack["DEMO_SHOP_URL"]}
    answer = requests.post(
        url, params={"key": stack["DEMO_PUBLISHABLE_KEY"]}, data=body, headers=beacon, timeout=30
    )
    assert answer.status_code == 202 and answer.json()["accepted"] == 1, answer.text

    leaked = requests.post(
        url, params={"key": stack["DEMO_API_KEY"]}, data=body, headers=beacon, timeout=TIMEOUT
    )
    assert leaked.status_code == 403 and code(leaked) == "secret_key_in_url", leaked.text
    from_page = requests.post(
        url,
        data=body,
        headers={**beacon, "X-Api-Key": stack["DEMO_API_KEY"], "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert from_page.status_code == 403, from_page.text
    assert code(from_page) == "secret_key_from_browser"


def test_an_order_from_a_page_is_refused_so_no_invented_order_mints_a_play_token(
    stack: dict[str, str], unique: str
) -> None:
    """A play token is minted from a ``cart_validated`` the decider sees: from a page's key
    the event is refused (``secret_key_required``) and never stored nor published; the
    back end's secret key confirms the same order."""
    shopper = f"order-{unique}"
    put_personal_tree(stack, shopper)
    invented = event("cart_validated", shopper, order_id=f"o-{unique}")
    status = event("order_status_changed", shopper, order_id=f"o-{unique}")
    answer = post(stack, [invented, status, event("page_viewed", shopper)], api_key="")
    assert answer.status_code == 401  # no key at all
    answer = requests.post(
        f"{stack['INGEST_URL']}/v1/events",
        json={"events": [invented, status, event("page_viewed", shopper)]},
        headers={**page(stack), "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["accepted"] == 1, body
    refused = {r["event_id"]: [x["code"] for x in r["reasons"]] for r in body["rejected"]}
    assert refused == {
        invented["event_id"]: ["secret_key_required"],
        status["event_id"]: ["secret_key_required"],
    }, body
    # The decider never saw the invented order: waiting on it ends empty (204).
    waited = requests.get(
        f"{stack['EXPERIENCES_URL']}/v1/experiences",
        params={"after": invented["event_id"], "wait_ms": "1500"},
        headers=signed(stack, shopper),
        timeout=TIMEOUT,
    )
    assert waited.status_code == 204, waited.text
    confirmed = post(stack, [invented])  # the secret key: the back end confirms it
    assert confirmed.status_code == 202 and confirmed.json()["accepted"] == 1, confirmed.text


def test_experiences_need_the_shoppers_signature_with_a_publishable_key(
    stack: dict[str, str], unique: str
) -> None:
    shopper = f"signed-{unique}"
    url = f"{stack['EXPERIENCES_URL']}/v1/experiences"
    unsigned = requests.get(url, headers=page(stack, **{"X-Shopper-Id": shopper}), timeout=30)
    assert unsigned.status_code == 401 and code(unsigned) == "shopper_signature_missing"
    forged = requests.get(
        url,
        headers=page(stack, **{"X-Shopper-Id": shopper, "X-Shopper-Signature": "0" * 64}),
        timeout=TIMEOUT,
    )
    assert forged.status_code == 403 and code(forged) == "shopper_signature_invalid"
    # Another shopper's valid signature does not open this shopper's experiences.
    theirs = signed(stack, f"other-{unique}")
    theirs["X-Shopper-Id"] = shopper
    borrowed = requests.get(url, headers=theirs, timeout=TIMEOUT)
    assert borrowed.status_code == 403 and code(borrowed) == "shopper_signature_invalid"
    # Refusals are readable by the shop's page (CORS headers), so the tracker sees why.
    assert borrowed.headers["Access-Control-Allow-Origin"] == stack["DEMO_SHOP_URL"]
    answer = requests.get(url, headers=signed(stack, shopper), timeout=TIMEOUT)
    assert answer.status_code == 404 and code(answer) == "not_found", answer.text
    foreign = requests.get(url, headers=signed(stack, shopper, FOREIGN), timeout=TIMEOUT)
    assert foreign.status_code == 403 and code(foreign) == "origin_not_allowed"


def test_a_publishable_key_cannot_erase_or_suppress(stack: dict[str, str], unique: str) -> None:
    for path, body in (
        ("/v1/erasure-requests", {"shopper_id": f"victim-{unique}"}),
        ("/v1/suppressions", {"shopper_id": f"victim-{unique}"}),
    ):
        answer = requests.post(
            f"{stack['ERASURE_URL']}{path}",
            json=body,
            headers={"X-Api-Key": stack["DEMO_PUBLISHABLE_KEY"]},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 403, (path, answer.text)
        assert code(answer) == "secret_key_required", path


def test_an_experience_is_answered_as_soon_as_its_event_is_decided(
    stack: dict[str, str], unique: str
) -> None:
    shopper = f"waits-{unique}"
    put_personal_tree(stack, shopper)
    url = f"{stack['EXPERIENCES_URL']}/v1/experiences"
    sent = event("product_added_to_basket", shopper)
    started = time.monotonic()
    assert post(stack, [sent]).json()["accepted"] == 1
    answer = requests.get(
        url,
        params={"after": sent["event_id"], "wait_ms": "5000"},
        headers=signed(stack, shopper),
        timeout=TIMEOUT,
    )
    elapsed = time.monotonic() - started
    print(f"event posted -> its experiences answered: {elapsed * 1000:.0f} ms")
    assert answer.status_code == 200, answer.text
    assert answer.json()["event_id"] == sent["event_id"]
    assert elapsed < 5.0  # answered when decided, not at the end of the wait
    never = str(uuid.uuid4())
    started = time.monotonic()
    empty = requests.get(
        url, params={"after": never, "wait_ms": "400"}, headers=signed(stack, shopper), timeout=30
    )
    waited = time.monotonic() - started
    assert empty.status_code == 204, empty.text
    assert 0.4 <= waited < 5.0, waited
    bad = requests.get(
        url, params={"after": "x", "wait_ms": "400"}, headers=signed(stack, shopper), timeout=30
    )
    assert bad.status_code == 400 and code(bad) == "invalid_after"


def test_a_page_plays_only_its_own_signed_shoppers_tokens(
    stack: dict[str, str],
    stack_settings: StackSettings,
    unique: str,
    request: pytest.FixtureRequest,
) -> None:
    key = (stack_settings.local_dir / "play-signing-key").read_text().strip().encode()
    campaign = game(stack, unique, odds=1.0)
    request.addfinalizer(  # active on the demo retailer: no later tree compilation may find it
        lambda: FirestoreCampaignStore(firestore(stack)).delete(campaign.campaign_id)
    )
    shopper = f"player-{unique}"
    mine = token(key, campaign, f"o-{unique}", retailer=stack["DEMO_RETAILER_ID"], shopper=shopper)
    url = f"{stack['PLAYS_URL']}/v1/plays"
    unsigned = requests.post(
        url,
        json={"play_token": mine},
        headers=page(stack, **{"X-Shopper-Id": shopper}),
        timeout=TIMEOUT,
    )
    assert unsigned.status_code == 401 and code(unsigned) == "shopper_signature_missing"
    someone_else = requests.post(
        url, json={"play_token": mine}, headers=signed(stack, f"thief-{unique}"), timeout=30
    )
    assert someone_else.status_code == 403, someone_else.text
    assert code(someone_else) == "token_not_for_shopper"
    played = requests.post(
        url, json={"play_token": mine}, headers=signed(stack, shopper), timeout=30
    )
    assert played.status_code == 201, played.text
    assert played.json()["outcome"] == "won"
    assert played.headers["Access-Control-Allow-Origin"] == stack["DEMO_SHOP_URL"]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from shared.cli import main

    assert main(list(argv)) == 0, argv
    return capsys.readouterr().out.strip()


def test_keys_are_issued_listed_and_revoked_and_identity_secrets_rotate_with_grace(
    stack: dict[str, str], unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.retailers.identity import identity_secret

    retailer, origin = f"shop-{unique}", f"https://shop-{unique}.example"
    key = cli(
        capsys, "api-key", "issue", "--retailer", retailer, "--publishable", "--origin", origin
    )
    assert key.startswith("cwpk_")
    preflight = requests.options(
        f"{stack['INGEST_URL']}/v1/events",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        timeout=TIMEOUT,
    )
    assert preflight.status_code == 204, preflight.text
    listed = cli(capsys, "api-key", "list", "--retailer", retailer)
    assert "publishable" in listed and origin in listed and key not in listed, listed
    cli(capsys, "api-key", "revoke", "--retailer", retailer, "--hash", listed.split()[0])
    assert "revoked" in cli(capsys, "api-key", "list", "--retailer", retailer)

    master = stack["SHOPPER_IDENTITY_KEY"]
    url = f"{stack['EXPERIENCES_URL']}/v1/experiences"
    for grace, old_still_valid in (("24", True), ("0", False)):
        rotating = f"rotates-{grace}-{unique}"
        page_key = cli(
            capsys, "api-key", "issue", "--retailer", rotating, "--publishable", "--origin", origin
        )
        old = identity_secret(master, rotating, 1)
        new = cli(
            capsys, "identity-secret", "--retailer", rotating, "--rotate", "--grace-hours", grace
        )
        assert new == identity_secret(master, rotating, 2)
        for secret, valid in ((new, True), (old, old_still_valid)):
            answer = requests.get(
                url,
                headers={
                    "X-Api-Key": page_key,
                    "Origin": origin,
                    "X-Shopper-Id": "s-1",
                    "X-Shopper-Signature": shopper_signature(secret, "s-1"),
                },
                timeout=TIMEOUT,
            )
            expected = (404, "not_found") if valid else (403, "shopper_signature_invalid")
            assert (answer.status_code, code(answer)) == expected, (grace, secret == new)
