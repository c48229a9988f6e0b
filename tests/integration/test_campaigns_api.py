"""The campaigns function on the local stack: every validation error, every role boundary,
and the audit (Firestore and BigQuery emulators, the function served by the stack)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.campaigns.admin import issue_csm_key
from shared.campaigns.firestore_admin import FirestoreCsmAccounts
from shared.platform import clients
from shared.system.resources import CREDENTIALS_DATABASE
from tests.integration.campaign_cleanup import campaigns_ending_with, remove

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
TIMEOUT = 60


@dataclass(frozen=True)
class World:
    url: str
    suffix: str
    retailer_a: str
    retailer_b: str
    products: tuple[str, str]
    keys: dict[str, str]  # admin, csm_a, csm_b, analyst, analyst_a


def _insert_products(stack: dict[str, str], rows: list[dict[str, Any]]) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    errors = client.insert_rows_json(f"{project}.cartwise.sold_products", rows, timeout=TIMEOUT)
    assert errors == []


def sold(retailer: str, shopper: str, product: str, at: datetime, amount: str, **more: Any) -> Any:
    order = more.pop("order_id", f"o-{uuid.uuid4().hex[:8]}")
    return {
        "row_id": f"{uuid.uuid4()}:0",
        "event_id": str(uuid.uuid4()),
        "retailer_id": retailer,
        "shopper_id": shopper,
        "session_id": None,
        "occurred_at": at.isoformat(),
        "ingested_at": at.isoformat(),
        "order_id": order,
        "line_number": 0,
        "product_id": product,
        "brand": more.get("brand"),
        "category": more.get("category"),
        "quantity": more.get("quantity", 1),
        "unit_price": amount,
        "discount": "0",
        "amount": amount,
    }


@pytest.fixture(scope="module")
def world(stack: dict[str, str]) -> Iterator[World]:
    suffix = uuid.uuid4().hex[:8]
    a, b = f"ra-{suffix}", f"rb-{suffix}"
    project = stack["GOOGLE_CLOUD_PROJECT"]
    firestore = clients.firestore_client(project)
    for retailer in (a, b):
        firestore.collection("retailers").document(retailer).set({"name": retailer})
    products = (f"p1-{suffix}", f"p2-{suffix}")
    past = NOW - timedelta(days=3)
    _insert_products(
        stack,
        [sold(r, "s1", p, past, "2.50") for r in (a, b) for p in products],
    )
    accounts = FirestoreCsmAccounts(clients.firestore_client(project, CREDENTIALS_DATABASE))
    keys = {
        "admin": issue_csm_key(accounts, "admin-x", "admin", None, NOW),
        "csm_a": issue_csm_key(accounts, "csm-a", "csm", [a], NOW),
        "csm_b": issue_csm_key(accounts, "csm-b", "csm", [b], NOW),
        "analyst": issue_csm_key(accounts, "analyst-x", "analyst", None, NOW),
        "analyst_a": issue_csm_key(accounts, "analyst-a", "analyst", [a], NOW),
    }
    try:
        yield World(stack["CAMPAIGNS_URL"], suffix, a, b, products, keys)
    finally:
        remove(
            stack,
            campaign_ids=campaigns_ending_with(stack, suffix),
            keys=keys.values(),
            retailers=(a, b),
        )


def call(
    world: World, method: str, path: str, who: str | None = "admin", **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {world.keys[who]}"} if who else {}
    return requests.request(
        method, f"{world.url}{path}", headers=headers, timeout=TIMEOUT, **kwargs
    )


def body(world: World, name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "campaign_id": f"{name}-{world.suffix}",
        "name": f"Campaign {name}",
        "brand": "Acme",
        "retailer_ids": [world.retailer_a],
        "experience_type": "personalized_promotion",
        "starts_at": (NOW + timedelta(days=1)).isoformat(),
        "ends_at": (NOW + timedelta(days=15)).isoformat(),
        "targeted_product_ids": [world.products[0]],
        "generosity_pct": "15",
        "budget": "1000",
        "control_share": 0.2,
        "creative": {"title": "Save 15%", "text": "On Acme", "image_url": "https://x.test/a.png"},
    }
    data.update(changes)
    return data


def csrf_token(page: str) -> str:
    """The back-office session's CSRF token, from any of its pages' forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def refused(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def test_credentials_are_required_and_are_not_tracker_keys(
    world: World, stack: dict[str, str]
) -> None:
    refused(call(world, "GET", "/v1/campaigns", None), 401, "unauthenticated")
    tracker_key = {"Authorization": f"Bearer {stack['DEMO_API_KEY']}"}
    response = requests.get(f"{world.url}/v1/campaigns", headers=tracker_key, timeout=TIMEOUT)
    refused(response, 401, "unauthenticated")
    assert requests.get(f"{world.url}/openapi.json", timeout=TIMEOUT).json()["paths"]


def test_create_edit_pause_archive_and_every_change_is_audited(world: World) -> None:
    created = call(world, "POST", "/v1/campaigns", json=body(world, "life"))
    assert created.status_code == 201, created.text
    campaign = created.json()
    cid = campaign["campaign_id"]
    assert campaign["status"] == "draft" and campaign["creative"]["title"] == "Save 15%"
    assert call(world, "GET", f"/v1/campaigns/{cid}").json() == campaign

    edited = call(world, "PATCH", f"/v1/campaigns/{cid}", json={"generosity_pct": "20"})
    assert edited.status_code == 200 and edited.json()["generosity_pct"] == "20"
    assert call(world, "POST", f"/v1/campaigns/{cid}/activate").json()["status"] == "active"
    assert call(world, "POST", f"/v1/campaigns/{cid}/pause").json()["status"] == "paused"
    refused(call(world, "POST", f"/v1/campaigns/{cid}/pause"), 409, "invalid_transition")
    assert call(world, "POST", f"/v1/campaigns/{cid}/archive").json()["status"] == "archived"
    refused(call(world, "PATCH", f"/v1/campaigns/{cid}", json={"name": "x"}), 409, "archived")
    refused(call(world, "POST", f"/v1/campaigns/{cid}/activate"), 409, "invalid_transition")

    audit = call(world, "GET", f"/v1/campaigns/{cid}/audit").json()["audit"]
    assert [r["action"] for r in audit] == ["create", "update", "activate", "pause", "archive"]
    assert {r["csm_id"] for r in audit} == {"admin-x"}
    assert audit[1]["changes"] == {"generosity_pct": {"before": "15", "after": "20"}}
    assert audit[4]["changes"] == {"status": {"before": "paused", "after": "archived"}}
    assert audit[0]["changes"]["campaign_id"] == {"before": None, "after": cid}
    assert all(datetime.fromisoformat(r["at"]) >= NOW for r in audit)


@pytest.mark.parametrize(
    ("changes", "status", "code", "field"),
    [
        ({"ends_at": (NOW - timedelta(days=5)).isoformat()}, 422, "invalid_campaign", "campaign"),
        (
            {
                "starts_at": (NOW - timedelta(days=9)).isoformat(),
                "ends_at": (NOW - timedelta(days=2)).isoformat(),
            },
            422,
            "invalid_campaign",
            "ends_at",
        ),
        ({"starts_at": "next tuesday"}, 422, "invalid_campaign", "starts_at"),
        ({"budget": "-5"}, 422, "invalid_campaign", "budget"),
        ({"budget": "0"}, 422, "invalid_campaign", "budget"),
        (
            {
                "experience_type": "gamified_promotion",
                "win_probability": 0.1,
                "prize_value": "5",
                "budget": None,
            },
            422,
            "invalid_campaign",
            "experience_type",
        ),
        (
            {
                "experience_type": "gamified_promotion",
                "win_probability": 0.1,
                "prize_value": "50",
                "budget": "20",
            },
            422,
            "invalid_campaign",
            "prize_value",
        ),
        ({"generosity_pct": "150"}, 422, "invalid_campaign", "generosity_pct"),
        (
            {"generosity_pct": "10", "generosity_min_pct": "12"},
            422,
            "invalid_campaign",
            "campaign",
        ),
        ({"control_share": 1.5}, 422, "invalid_campaign", "control_share"),
        ({"targeted_product_ids": []}, 422, "invalid_campaign", "campaign"),
        ({"retailer_ids": []}, 422, "invalid_campaign", "retailer_ids"),
        ({"experience_type": "banner"}, 422, "invalid_campaign", "experience_type"),
        (
            {"creative": {"title": "t", "image_url": "javascript:alert(1)"}},
            422,
            "invalid_campaign",
            "creative.image_url",
        ),
        ({"colour": "red"}, 422, "invalid_campaign", "colour"),
        ({"campaign_id": "has spaces"}, 422, "invalid_campaign", "campaign_id"),
        ({"status": "archived"}, 422, "invalid_campaign", "status"),
    ],
)
def test_every_invalid_field_is_refused_with_its_reason(
    world: World, changes: dict[str, Any], status: int, code: str, field: str
) -> None:
    name = f"bad{uuid.uuid4().hex[:6]}"
    error = refused(
        call(world, "POST", "/v1/campaigns", json=body(world, name, **changes)), status, code
    )
    assert field in {f["field"] for f in error["fields"]}, error
    refused(call(world, "GET", f"/v1/campaigns/{name}-{world.suffix}"), 404, "not_found")


def test_unknown_retailers_and_products_bad_json_and_duplicates(world: World) -> None:
    error = refused(
        call(world, "POST", "/v1/campaigns", json=body(world, "u1", retailer_ids=["nowhere"])),
        422,
        "unknown_retailers",
    )
    assert error["retailer_ids"] == ["nowhere"]
    error = refused(
        call(
            world,
            "POST",
            "/v1/campaigns",
            json=body(world, "u2", targeted_product_ids=[world.products[0], "ghost"]),
        ),
        422,
        "unknown_products",
    )
    assert error["product_ids"] == ["ghost"]
    bad = requests.post(
        f"{world.url}/v1/campaigns",
        data=b"{not json",
        headers={"Authorization": f"Bearer {world.keys['admin']}"},
        timeout=TIMEOUT,
    )
    refused(bad, 400, "invalid_json")
    refused(call(world, "POST", "/v1/campaigns", json=["a"]), 400, "invalid_json")
    first = call(
        world,
        "POST",
        "/v1/campaigns",
        json=body(
            world, "dup", targeted_product_ids=[world.products[1]], retailer_ids=[world.retailer_b]
        ),
    )
    assert first.status_code == 201, first.text
    again = body(
        world, "dup", retailer_ids=[world.retailer_b], targeted_product_ids=[world.products[1]]
    )
    refused(call(world, "POST", "/v1/campaigns", json=again), 409, "already_exists")
    refused(
        call(world, "PATCH", f"/v1/campaigns/dup-{world.suffix}", json={"status": "active"}),
        422,
        "invalid_campaign",
    )


def test_overlapping_campaigns_conflict(world: World) -> None:
    products = [world.products[1]]
    first = call(
        world, "POST", "/v1/campaigns", json=body(world, "ov1", targeted_product_ids=products)
    )
    assert first.status_code == 201, first.text
    error = refused(
        call(
            world,
            "POST",
            "/v1/campaigns",
            json=body(
                world,
                "ov2",
                targeted_product_ids=products,
                starts_at=(NOW + timedelta(days=10)).isoformat(),
                ends_at=(NOW + timedelta(days=30)).isoformat(),
            ),
        ),
        409,
        "conflicting_campaign",
    )
    assert error["campaign_ids"] == [f"ov1-{world.suffix}"]
    # After it: no overlap. Another experience type: no conflict either.
    after = body(
        world,
        "ov3",
        targeted_product_ids=products,
        starts_at=(NOW + timedelta(days=15)).isoformat(),
        ends_at=(NOW + timedelta(days=30)).isoformat(),
    )
    assert call(world, "POST", "/v1/campaigns", json=after).status_code == 201
    # Editing it into the first one's period conflicts too.
    moved = {"starts_at": (NOW + timedelta(days=2)).isoformat()}
    refused(
        call(world, "PATCH", f"/v1/campaigns/ov3-{world.suffix}", json=moved),
        409,
        "conflicting_campaign",
    )
    # Once the first is archived, the way is free.
    call(world, "POST", f"/v1/campaigns/ov1-{world.suffix}/archive")
    assert call(world, "PATCH", f"/v1/campaigns/ov3-{world.suffix}", json=moved).status_code == 200


def test_a_csm_of_retailer_a_never_sees_or_touches_retailer_b(world: World) -> None:
    mine = call(
        world,
        "POST",
        "/v1/campaigns",
        "csm_a",
        json=body(
            world,
            "mine",
            targeted_product_ids=[world.products[0]],
            experience_type="tension_cart",
            threshold="20",
        ),
    )
    assert mine.status_code == 201, mine.text
    theirs = call(
        world,
        "POST",
        "/v1/campaigns",
        "csm_b",
        json=body(
            world,
            "theirs",
            retailer_ids=[world.retailer_b],
            experience_type="tension_cart",
            threshold="20",
        ),
    )
    assert theirs.status_code == 201, theirs.text
    # A scoped account's ids: the label it asked for, made unique by random digits.
    mine_id, theirs_id = mine.json()["campaign_id"], theirs.json()["campaign_id"]
    assert mine_id.startswith(f"mine-{world.suffix}-") and theirs_id.startswith(
        f"theirs-{world.suffix}-"
    )
    both = call(
        world,
        "POST",
        "/v1/campaigns",
        "admin",
        json=body(
            world,
            "both",
            retailer_ids=[world.retailer_a, world.retailer_b],
            experience_type="product_recommendation",
        ),
    )
    assert both.status_code == 201, both.text

    listed = {
        c["campaign_id"] for c in call(world, "GET", "/v1/campaigns", "csm_a").json()["campaigns"]
    }
    assert mine_id in listed
    assert not {theirs_id, f"both-{world.suffix}"} & listed
    assert all(
        world.retailer_b not in c["retailer_ids"]
        for c in call(world, "GET", "/v1/campaigns", "csm_a").json()["campaigns"]
    )

    for hidden in (theirs_id, f"both-{world.suffix}"):
        for method, path, kwargs in (
            ("GET", f"/v1/campaigns/{hidden}", {}),
            ("PATCH", f"/v1/campaigns/{hidden}", {"json": {"name": "mine now"}}),
            ("POST", f"/v1/campaigns/{hidden}/pause", {}),
            ("POST", f"/v1/campaigns/{hidden}/archive", {}),
            ("POST", f"/v1/campaigns/{hidden}/activate", {}),
            ("GET", f"/v1/campaigns/{hidden}/audit", {}),
            ("GET", f"/v1/campaigns/{hidden}/report", {}),
        ):
            response = call(world, method, path, "csm_a", **kwargs)
            error = refused(response, 404, "not_found")
            assert error["message"] == f"no campaign {hidden}"  # same as a missing one
    missing = refused(call(world, "GET", "/v1/campaigns/nope", "csm_a"), 404, "not_found")
    assert set(missing) == {"code", "message"}
    # Unchanged by the attempts.
    assert call(world, "GET", f"/v1/campaigns/{theirs_id}", "csm_b").json()["name"] == (
        "Campaign theirs"
    )

    # A CSM cannot create on, or move its campaign to, a retailer outside its scope.
    refused(
        call(
            world,
            "POST",
            "/v1/campaigns",
            "csm_a",
            json=body(world, "grab", retailer_ids=[world.retailer_b]),
        ),
        403,
        "retailer_out_of_scope",
    )
    refused(
        call(
            world,
            "PATCH",
            f"/v1/campaigns/{mine_id}",
            "csm_a",
            json={"retailer_ids": [world.retailer_a, world.retailer_b]},
        ),
        403,
        "retailer_out_of_scope",
    )
    # Asking for the exact id of a campaign out of scope: a new campaign under another id,
    # as for any id (tests/integration/test_credentials_attacks.py probes it further).
    again = call(
        world,
        "POST",
        "/v1/campaigns",
        "csm_a",
        json=body(
            world,
            "theirs",
            experience_type="gamified_promotion",
            win_probability=0.1,
            prize_value="5",
            campaign_id=theirs_id,
        ),
    )
    assert again.status_code == 201, again.text
    assert again.json()["campaign_id"].startswith(f"{theirs_id}-")
    archived = call(world, "POST", f"/v1/campaigns/{again.json()['campaign_id']}/archive", "csm_a")
    assert archived.status_code == 200, archived.text  # out of the other tests' way

    audit = call(world, "GET", f"/v1/campaigns/{mine_id}/audit", "csm_a").json()["audit"]
    assert [(r["action"], r["csm_id"], r["role"]) for r in audit] == [("create", "csm-a", "csm")]


def test_analysts_read_and_never_write(world: World) -> None:
    created = call(
        world,
        "POST",
        "/v1/campaigns",
        "admin",
        json=body(
            world,
            "ro",
            retailer_ids=[world.retailer_b],
            experience_type="gamified_promotion",
            win_probability=0.2,
            prize_value="5",
            targeted_product_ids=[world.products[1]],
        ),
    )
    assert created.status_code == 201, created.text
    cid = f"ro-{world.suffix}"
    assert call(world, "GET", f"/v1/campaigns/{cid}", "analyst").status_code == 200
    assert call(world, "GET", f"/v1/campaigns/{cid}/report", "analyst").status_code == 200
    refused(
        call(world, "PATCH", f"/v1/campaigns/{cid}", "analyst", json={"name": "x"}),
        403,
        "read_only",
    )
    for action in ("activate", "pause", "archive"):
        refused(call(world, "POST", f"/v1/campaigns/{cid}/{action}", "analyst"), 403, "read_only")
    refused(
        call(world, "POST", "/v1/campaigns", "analyst", json=body(world, "ro2")), 403, "read_only"
    )
    # A scoped analyst: retailer B's campaign does not exist for them.
    refused(call(world, "GET", f"/v1/campaigns/{cid}", "analyst_a"), 404, "not_found")
    refused(
        call(world, "PATCH", f"/v1/campaigns/{cid}", "analyst_a", json={"name": "x"}),
        404,
        "not_found",
    )
    audit = call(world, "GET", f"/v1/campaigns/{cid}/audit").json()["audit"]
    assert [r["action"] for r in audit] == ["create"]


def test_back_office_pages_keep_the_same_boundaries(world: World) -> None:
    created = call(
        world,
        "POST",
        "/v1/campaigns",
        "csm_b",
        json=body(
            world,
            "page-b",
            retailer_ids=[world.retailer_b],
            experience_type="product_recommendation",
            targeted_product_ids=[world.products[1]],
        ),
    )
    assert created.status_code == 201, created.text
    cid = created.json()["campaign_id"]
    session = requests.Session()
    assert (
        session.get(f"{world.url}/campaigns", timeout=TIMEOUT, allow_redirects=False).headers[
            "Location"
        ]
        == "/login"
    )
    login = session.post(
        f"{world.url}/login",
        data={"key": world.keys["csm_a"]},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert login.status_code == 303
    assert (
        "HttpOnly" in login.headers["Set-Cookie"]
        and "SameSite=Strict" in login.headers["Set-Cookie"]
    )
    listing = session.get(f"{world.url}/campaigns", timeout=TIMEOUT)
    assert listing.status_code == 200 and cid not in listing.text
    for path in (f"/campaigns/{cid}", f"/campaigns/{cid}/report"):
        page = session.get(f"{world.url}{path}", timeout=TIMEOUT)
        assert page.status_code == 404 and "Campaign page" not in page.text
    token = csrf_token(listing.text)  # a valid POST, but of a campaign out of scope
    for path, form in ((f"/campaigns/{cid}", {"name": "taken"}), (f"/campaigns/{cid}/archive", {})):
        posted = session.post(
            f"{world.url}{path}", data={**form, "csrf_token": token}, timeout=TIMEOUT
        )
        assert posted.status_code == 404
    assert call(world, "GET", f"/v1/campaigns/{cid}", "csm_b").json()["status"] == "draft"
    analyst = requests.Session()
    analyst.post(f"{world.url}/login", data={"key": world.keys["analyst"]}, timeout=TIMEOUT)
    report = analyst.get(f"{world.url}/campaigns/{cid}/report", timeout=TIMEOUT)
    assert report.status_code == 200
    refused_page = analyst.post(
        f"{world.url}/campaigns/{cid}/archive",
        data={"csrf_token": csrf_token(report.text)},
        timeout=TIMEOUT,
    )
    assert refused_page.status_code == 403 and "Read only" in refused_page.text
    assert 'id="new-campaign"' not in analyst.get(f"{world.url}/campaigns", timeout=TIMEOUT).text


def test_a_games_edits_keep_never_paying_more_than_its_budget(world: World) -> None:
    """Once a game was active, wins of its prize may be paid: a lower prize would give the
    budget more slots than it holds, a lower budget fewer than were taken; a budget of
    millions of prizes is a typo (its slot ledger is listed whole)."""
    game = body(
        world,
        "game",
        experience_type="gamified_promotion",
        budget="100",
        prize_value="10",
        win_probability=0.5,
        status="active",
    )
    absurd = {**game, "campaign_id": f"absurd-{world.suffix}", "budget": "100000000"}
    error = refused(call(world, "POST", "/v1/campaigns", json=absurd), 422, "invalid_campaign")
    assert "budget" in {f["field"] for f in error["fields"]}
    created = call(world, "POST", "/v1/campaigns", json=game)
    assert created.status_code == 201, created.text
    cid = game["campaign_id"]
    for change, field in (({"prize_value": "1"}, "prize_value"), ({"budget": "50"}, "budget")):
        error = refused(
            call(world, "PATCH", f"/v1/campaigns/{cid}", json=change), 422, "invalid_campaign"
        )
        assert field in {f["field"] for f in error["fields"]}, error
    grown = call(world, "PATCH", f"/v1/campaigns/{cid}", json={"budget": "200"})
    assert grown.status_code == 200 and grown.json()["budget"] == "200", grown.text
    paused = call(world, "POST", f"/v1/campaigns/{cid}/pause")
    assert paused.json()["status"] == "paused"
    refused(
        call(world, "PATCH", f"/v1/campaigns/{cid}", json={"prize_value": "5"}),
        422,
        "invalid_campaign",
    )
