"""Attacks on the credentials and the back office, against the running stack (issue 19).

Black box: HTTP to the running functions; the stores are read only to check effects (and
written only where an attacker or an operator would: a legacy key, a session record that
has expired). What each test's mutation was, and that it failed: the branch's report.

- keys and accounts are issued into the ``credentials`` database only (none in
  ``(default)``, which the public functions write), and the functions authenticate them
  from there; legacy ones are moved there (IAM: tests/unit/test_infra_iam.py);
- back-office sessions: the cookie holds a random session id only; logout revokes it;
  a forged id, the CSM key itself, or the stored hash is no session; expired sessions
  (absolute or idle) are refused; every POST needs the session's CSRF token; failed
  logins are limited per client (429 + Retry-After);
- campaigns out of a CSM's scope: asking for the id of one gets the same answer as asking
  for an id that never existed; a conflict with one is not described.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.campaigns.admin import CONFLICT_MESSAGE, hash_key, issue_csm_key
from shared.campaigns.firestore_admin import ACCOUNTS, FirestoreCsmAccounts
from shared.campaigns.sessions import BackOfficeSession, hash_session_id
from shared.platform import clients
from shared.retailers.firestore_api_keys import COLLECTION as API_KEYS
from shared.retailers.keys import hash_api_key, new_api_key
from shared.system.resources import (
    BACK_OFFICE_DATABASE,
    CREDENTIALS_DATABASE,
    DEFAULT_DATABASE,
    SESSIONS_COLLECTION,
)
from shared.system.settings import CampaignsSettings
from tests.integration.campaign_cleanup import campaigns_ending_with, remove

pytestmark = pytest.mark.integration

TIMEOUT = 60
NOW = datetime.now(UTC).replace(microsecond=0)


def firestore(stack: dict[str, str], database: str = DEFAULT_DATABASE) -> Any:
    return clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"], database)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from shared.cli import main

    assert main(list(argv)) == 0, argv
    return capsys.readouterr().out.strip()


# --- 1. credentials live in their own database --------------------------------------------


def authenticated_by_erasure_api(stack: dict[str, str], key: str) -> int:
    """A retailer's key at a public function: 404 (no such request: authenticated) or 401."""
    return requests.get(
        f"{stack['ERASURE_URL']}/v1/erasure-requests/{uuid.uuid4().hex}",
        headers={"X-Api-Key": key},
        timeout=TIMEOUT,
    ).status_code


def test_keys_and_accounts_are_issued_into_the_credentials_database_only(
    stack: dict[str, str], unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operators' CLI writes API keys and CSM accounts to ``credentials``; the public
    functions (which write ``(default)``) authenticate them from there; ``(default)``
    holds none, the demo's included."""
    retailer = f"cred-{unique}"
    key = cli(capsys, "api-key", "issue", "--retailer", retailer)
    csm_key = cli(capsys, "csm-key", "--csm-id", f"cred-{unique}", "--role", "analyst")
    credentials = firestore(stack, CREDENTIALS_DATABASE)
    try:
        assert authenticated_by_erasure_api(stack, key) == 404
        assert authenticated_by_erasure_api(stack, stack["DEMO_API_KEY"]) == 404
        assert authenticated_by_erasure_api(stack, new_api_key()) == 401
        listed = requests.get(
            f"{stack['CAMPAIGNS_URL']}/v1/campaigns",
            headers={"Authorization": f"Bearer {csm_key}"},
            timeout=TIMEOUT,
        )
        assert listed.status_code == 200, listed.text

        assert credentials.collection(API_KEYS).document(hash_api_key(key)).get().exists
        assert credentials.collection(ACCOUNTS).document(hash_key(csm_key)).get().exists
        default = firestore(stack)
        for collection in (API_KEYS, ACCOUNTS):
            left = [s.id for s in default.collection(collection).limit(5).stream()]
            assert left == [], f"(default)/{collection} holds credentials: {left}"
    finally:
        for database in (credentials, firestore(stack)):
            database.collection(API_KEYS).document(hash_api_key(key)).delete()
            database.collection(ACCOUNTS).document(hash_key(csm_key)).delete()


def test_a_key_left_in_the_default_database_authenticates_nowhere_until_migrated(
    stack: dict[str, str], unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What code run in a public function could write to ``(default)`` (its own database)
    mints no key: the functions read keys from ``credentials`` only. A key written there
    before the database existed is moved by ``cartwise credentials migrate``."""
    key = new_api_key()
    record = {
        "key_hash": hash_api_key(key),
        "retailer_id": f"legacy-{unique}",
        "created_at": NOW.isoformat(),
        "revoked": False,
        "kind": "secret",
        "origins": [],
    }
    default = firestore(stack)
    credentials = firestore(stack, CREDENTIALS_DATABASE)
    default.collection(API_KEYS).document(record["key_hash"]).set(record)
    try:
        # (Asked of ingest: the erasure API, asked after the move, has not cached a miss.)
        posted = requests.post(
            f"{stack['INGEST_URL']}/v1/events",
            headers={"X-Api-Key": key},
            json={"events": []},
            timeout=TIMEOUT,
        )
        assert posted.status_code == 401, posted.text
        out = cli(capsys, "credentials", "migrate")
        assert "api_keys: 1 moved" in out, out
        assert not default.collection(API_KEYS).document(record["key_hash"]).get().exists
        moved = credentials.collection(API_KEYS).document(record["key_hash"]).get()
        assert moved.exists and moved.to_dict()["retailer_id"] == f"legacy-{unique}"
        assert authenticated_by_erasure_api(stack, key) == 404
        assert "api_keys: 0 moved" in cli(capsys, "credentials", "migrate")  # idempotent
    finally:
        default.collection(API_KEYS).document(record["key_hash"]).delete()
        credentials.collection(API_KEYS).document(record["key_hash"]).delete()


# --- 2. back-office sessions ---------------------------------------------------------------


@dataclass(frozen=True)
class BackOffice:
    url: str
    suffix: str
    retailer_a: str
    retailer_b: str
    keys: dict[str, str]  # admin, csm_a

    def client(self) -> dict[str, str]:
        """A client address of its own (Google's front end appends the real one last in
        the cloud): the login limit of one test never throttles another."""
        return {"X-Forwarded-For": f"198.51.100.7, client-{uuid.uuid4().hex[:12]}"}


@pytest.fixture(scope="module")
def office(stack: dict[str, str]) -> Iterator[BackOffice]:
    suffix = uuid.uuid4().hex[:8]
    a, b = f"sa-{suffix}", f"sb-{suffix}"
    default = firestore(stack)
    for retailer in (a, b):
        default.collection("retailers").document(retailer).set({"name": retailer})
    accounts = FirestoreCsmAccounts(firestore(stack, CREDENTIALS_DATABASE))
    keys = {
        "admin": issue_csm_key(accounts, f"admin-{suffix}", "admin", None, NOW),
        "csm_a": issue_csm_key(accounts, f"csm-a-{suffix}", "csm", [a], NOW),
    }
    try:
        # The brands the campaigns below target, sold at both retailers: a brand never
        # seen there is refused (unknown_brands).
        _sell_brands(
            stack, (a, b), [*(f"{label}-{suffix}" for label in LABELS), f"shared-{suffix}"]
        )
        yield BackOffice(stack["CAMPAIGNS_URL"], suffix, a, b, keys)
    finally:
        remove(
            stack,
            campaign_ids=campaigns_ending_with(stack, suffix),
            keys=keys.values(),
            retailers=(a, b),
        )


LABELS = ("csrf", "forged", "hidden", "probe")  # the campaigns' labels: their brands


def _sell_brands(stack: dict[str, str], retailers: Sequence[str], names: Sequence[str]) -> None:
    """One sold line of a product of each brand ``brand-{name}`` at each retailer."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    at = NOW.isoformat()
    rows = [
        {
            "row_id": f"{uuid.uuid4()}:0",
            "event_id": str(uuid.uuid4()),
            "retailer_id": retailer,
            "shopper_id": "s1",
            "session_id": None,
            "occurred_at": at,
            "ingested_at": at,
            "order_id": f"o-{uuid.uuid4().hex[:8]}",
            "line_number": 0,
            "product_id": f"p-{name}",
            "brand": f"brand-{name}",
            "category": None,
            "quantity": 1,
            "unit_price": "1.00",
            "discount": "0",
            "amount": "1.00",
        }
        for retailer in retailers
        for name in names
    ]
    bq = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    errors = bq.insert_rows_json(f"{project}.cartwise.sold_products", rows, timeout=TIMEOUT)
    assert errors == [], errors


def api(office: BackOffice, method: str, path: str, who: str = "admin", **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {office.keys[who]}"}
    return requests.request(method, f"{office.url}{path}", headers=headers, timeout=TIMEOUT, **kw)


def campaign(office: BackOffice, label: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "campaign_id": f"{label}-{office.suffix}",
        "name": f"Campaign {label}",
        "retailer_ids": [office.retailer_a],
        "experience_type": "product_recommendation",
        "starts_at": (NOW + timedelta(days=1)).isoformat(),
        "ends_at": (NOW + timedelta(days=10)).isoformat(),
        "targeted_brands": [f"brand-{label}-{office.suffix}"],
    }
    data.update(changes)
    return data


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def logged_in(office: BackOffice, who: str = "csm_a") -> tuple[requests.Session, str]:
    """A browser's session after login, and its session id (the cookie's value)."""
    browser = requests.Session()
    browser.headers.update(office.client())
    login = browser.post(
        f"{office.url}/login",
        data={"key": office.keys[who]},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert login.status_code == 303, login.text
    cookie = login.headers["Set-Cookie"]
    assert cookie.startswith("cw_session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session_id = browser.cookies["cw_session"]
    assert office.keys[who] not in cookie and len(session_id) >= 43  # 256 random bits
    return browser, session_id


def with_cookie(office: BackOffice, value: str) -> requests.Response:
    return requests.get(
        f"{office.url}/campaigns",
        cookies={"cw_session": value},
        headers=office.client(),
        timeout=TIMEOUT,
        allow_redirects=False,
    )


def refused_to_login(response: requests.Response) -> bool:
    return response.status_code in (302, 303) and response.headers["Location"] == "/login"


def test_a_cookie_is_refused_once_its_session_logged_out(
    stack: dict[str, str], office: BackOffice
) -> None:
    browser, session_id = logged_in(office)
    page = browser.get(f"{office.url}/campaigns", timeout=TIMEOUT)
    assert page.status_code == 200 and f"csm-a-{office.suffix}" in page.text
    stored = firestore(stack, BACK_OFFICE_DATABASE).collection(SESSIONS_COLLECTION)
    assert stored.document(hash_session_id(session_id)).get().exists
    assert not stored.document(session_id).get().exists  # the id itself is never stored

    out = browser.post(
        f"{office.url}/logout",
        data={"csrf_token": csrf_token(page.text)},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert refused_to_login(out)
    # The stolen (or kept) cookie: refused, the record gone server-side.
    assert refused_to_login(with_cookie(office, session_id))
    assert not stored.document(hash_session_id(session_id)).get().exists


def test_a_forged_session_id_the_csm_key_or_the_stored_hash_is_no_session(
    office: BackOffice,
) -> None:
    _, session_id = logged_in(office)
    assert with_cookie(office, session_id).status_code == 200  # the real one works
    for forged in (
        "x" * 43,
        str(uuid.uuid4()),
        session_id[:-1] + ("A" if session_id[-1] != "A" else "B"),
        hash_session_id(session_id),  # what a reader of the sessions store sees
        office.keys["csm_a"],  # the permanent key, what the cookie held before
        office.keys["admin"],
        "",
        "y" * 5000,
    ):
        response = with_cookie(office, forged)
        assert refused_to_login(response), (forged[:20], response.status_code)


def write_session(
    stack: dict[str, str], office: BackOffice, created: datetime, last_seen: datetime
) -> str:
    """A session record as a login would write it, created and last used at these times."""
    session_id = f"expired-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    policy = CampaignsSettings()
    absolute = created + timedelta(seconds=policy.session_absolute_s)
    record = BackOfficeSession(
        session_hash=hash_session_id(session_id),
        account_key_hash=hash_key(office.keys["csm_a"]),
        csm_id=f"csm-a-{office.suffix}",
        csrf_token=uuid.uuid4().hex,
        created_at=created,
        last_seen_at=last_seen,
        absolute_expires_at=absolute,
        expires_at=min(absolute, last_seen + timedelta(seconds=policy.session_idle_s)),
    )
    sessions = firestore(stack, BACK_OFFICE_DATABASE).collection(SESSIONS_COLLECTION)
    sessions.document(record.session_hash).set(record.model_dump())
    return session_id


def test_expired_sessions_are_refused_absolute_and_idle(
    stack: dict[str, str], office: BackOffice
) -> None:
    """8 h after login whatever the use, 30 min after the last request (the function's
    settings); the record is deleted on sight (Firestore's TTL policy does it otherwise)."""
    now = datetime.now(UTC)
    settings = CampaignsSettings()
    absolute, idle = settings.session_absolute_s, settings.session_idle_s
    live = write_session(stack, office, now - timedelta(minutes=5), now - timedelta(minutes=1))
    old = write_session(
        stack, office, now - timedelta(seconds=absolute + 60), now - timedelta(minutes=1)
    )
    idle_one = write_session(
        stack, office, now - timedelta(hours=1), now - timedelta(seconds=idle + 60)
    )
    sessions = firestore(stack, BACK_OFFICE_DATABASE).collection(SESSIONS_COLLECTION)
    try:
        assert with_cookie(office, live).status_code == 200  # the records are well formed
        for expired in (old, idle_one):
            assert refused_to_login(with_cookie(office, expired)), expired
            assert not sessions.document(hash_session_id(expired)).get().exists
    finally:
        for session_id in (live, old, idle_one):
            sessions.document(hash_session_id(session_id)).delete()


def test_every_post_needs_the_sessions_csrf_token(office: BackOffice) -> None:
    created = api(office, "POST", "/v1/campaigns", json=campaign(office, "csrf"))
    assert created.status_code == 201, created.text
    cid = created.json()["campaign_id"]
    browser, _ = logged_in(office, "admin")
    page = browser.get(f"{office.url}/campaigns/{cid}", timeout=TIMEOUT)
    token = csrf_token(page.text)
    assert page.text.count(f'name="csrf_token" value="{token}"') == page.text.count("<form")
    _, other_session = logged_in(office, "admin")
    other_token = csrf_token(with_cookie(office, other_session).text)
    assert other_token != token

    for form in (
        {},
        {"csrf_token": ""},
        {"csrf_token": "forged"},
        {"csrf_token": other_token},  # another session's token
    ):
        for path, data in (
            (f"/campaigns/{cid}/archive", {}),
            (f"/campaigns/{cid}", {"name": "changed by a forged form"}),
            ("/campaigns/new", campaign(office, "forged")),
            ("/logout", {}),
        ):
            refused = browser.post(
                f"{office.url}{path}", data={**data, **form}, timeout=TIMEOUT, allow_redirects=False
            )
            assert refused.status_code == 403, (path, form, refused.status_code)
            assert "csrf_token" in refused.text and "nothing was changed" in refused.text
    current = api(office, "GET", f"/v1/campaigns/{cid}").json()
    assert (current["status"], current["name"]) == ("draft", "Campaign csrf")
    assert api(office, "GET", f"/v1/campaigns/forged-{office.suffix}").status_code == 404
    assert browser.get(f"{office.url}/campaigns", timeout=TIMEOUT).status_code == 200  # still in

    # The same POST with the token goes through.
    done = browser.post(
        f"{office.url}/campaigns/{cid}/archive",
        data={"csrf_token": token},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert api(office, "GET", f"/v1/campaigns/{cid}").json()["status"] == "archived"


def test_a_login_flood_gets_429_with_retry_after(office: BackOffice) -> None:
    settings = CampaignsSettings()
    attacker = office.client()

    def attempt(key: str, headers: dict[str, str]) -> requests.Response:
        return requests.post(
            f"{office.url}/login",
            data={"key": key},
            headers=headers,
            timeout=TIMEOUT,
            allow_redirects=False,
        )

    for _ in range(settings.login_max_failures):
        assert attempt(f"cwc_{uuid.uuid4().hex}", attacker).status_code == 401
    for key in (f"cwc_{uuid.uuid4().hex}", office.keys["csm_a"]):  # even a good key now
        throttled = attempt(key, attacker)
        assert throttled.status_code == 429, throttled.text
        assert 0 < int(throttled.headers["Retry-After"]) <= settings.login_window_s
        assert "Too many failed logins" in throttled.text
        assert "Set-Cookie" not in throttled.headers
    # Another client is not held back.
    assert attempt(office.keys["csm_a"], office.client()).status_code == 303


# --- 3. campaigns out of scope ---------------------------------------------------------------


def shape(response: requests.Response, requested: str) -> tuple[Any, ...]:
    """What a caller can compare between two creations (ids aside, which are random)."""
    body = response.json()
    cid = body.pop("campaign_id")
    body.pop("name")
    return (
        response.status_code,
        cid.startswith(f"{requested}-") and re.fullmatch(r"[0-9a-f]{8}", cid[-8:]) is not None,
        sorted(response.headers.get("Content-Type", "").split(";")),
        body,
    )


def test_a_csm_cannot_tell_that_another_retailers_campaign_id_exists(
    office: BackOffice,
) -> None:
    hidden = f"hidden-{office.suffix}"
    made = api(
        office,
        "POST",
        "/v1/campaigns",
        json=campaign(office, "hidden", retailer_ids=[office.retailer_b]),
    )
    assert made.status_code == 201 and made.json()["campaign_id"] == hidden, made.text
    never = f"never-{office.suffix}"

    answers = {}
    for requested in (hidden, never):
        data = campaign(office, "probe", campaign_id=requested, name=f"probe {requested}")
        answers[requested] = api(office, "POST", "/v1/campaigns", "csm_a", json=data)
        created = answers[requested].json()["campaign_id"]
        api(office, "POST", f"/v1/campaigns/{created}/archive", "csm_a")  # out of the way
    assert answers[hidden].status_code == 201, answers[hidden].text
    assert shape(answers[hidden], hidden) == shape(answers[never], never)
    assert "exists" not in answers[hidden].text and "taken" not in answers[hidden].text
    # Untouched, and still retailer B's.
    still = api(office, "GET", f"/v1/campaigns/{hidden}").json()
    assert (still["retailer_ids"], still["name"]) == ([office.retailer_b], "Campaign hidden")


def test_a_conflict_with_a_campaign_out_of_scope_is_not_described(office: BackOffice) -> None:
    brand = f"brand-shared-{office.suffix}"
    both = api(
        office,
        "POST",
        "/v1/campaigns",
        json=campaign(
            office,
            "both",
            retailer_ids=[office.retailer_a, office.retailer_b],
            targeted_brands=[brand],
            name="Secret launch of retailer B",
        ),
    )
    assert both.status_code == 201, both.text
    refused = api(
        office,
        "POST",
        "/v1/campaigns",
        "csm_a",
        json=campaign(office, "mine", targeted_brands=[brand]),
    )
    assert refused.status_code == 409, refused.text
    assert refused.json() == {
        "error": {"code": "conflicting_campaign", "message": CONFLICT_MESSAGE, "campaign_ids": []}
    }
    for leak in (f"both-{office.suffix}", "Secret", office.retailer_b, "scope"):
        assert leak not in refused.text, leak
    # The admin, who sees it, is told which one.
    admin = api(
        office, "POST", "/v1/campaigns", json=campaign(office, "mine2", targeted_brands=[brand])
    )
    assert admin.status_code == 409 and admin.json()["error"]["campaign_ids"] == [
        f"both-{office.suffix}"
    ]
