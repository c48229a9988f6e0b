"""A revoked key stops working: retailer API keys (ingest, experiences, privacy API) and
CSM access keys (campaigns JSON API and back office), on the local stack.

Functions cache key lookups per instance (``*_API_KEY_CACHE_TTL_S``, 60 s;
``CAMPAIGNS_ACCOUNT_CACHE_TTL_S``, 30 s; the local stack keeps the defaults): a revocation
takes effect within the cache TTL, not at once. The tests poll with a deadline of the TTL
plus a margin, never a fixed sleep.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import pytest
import requests
from pydantic_settings import BaseSettings

from shared.campaigns.admin import hash_key, issue_csm_key
from shared.campaigns.firestore_admin import FirestoreCsmAccounts
from shared.platform import clients
from shared.retailers.firestore_api_keys import COLLECTION as API_KEYS
from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
from shared.retailers.keys import hash_api_key
from shared.system.resources import CREDENTIALS_DATABASE
from shared.system.settings import (
    CampaignsSettings,
    ErasureSettings,
    ExperiencesSettings,
    IngestSettings,
)
from tests.factories import event
from tests.integration.campaign_cleanup import remove
from tests.integration.test_ingest_api import post

pytestmark = pytest.mark.integration

TIMEOUT = 30
MARGIN_S = 30.0  # beyond the cache TTL: request latency, a loaded machine
POLL_EVERY_S = 1.0

Probe = Callable[[], requests.Response]


def cache_ttl_s(settings: type[BaseSettings], name: str) -> float:
    """A function's cache TTL: its environment variable if the stack sets one, else the
    settings' default (what the local stack runs with)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    override = os.environ.get(f"{prefix}{name}".upper())
    default = settings.model_fields[name].default
    return float(override) if override else float(default)


def unauthorized(response: requests.Response) -> bool:
    return response.status_code == 401


def refused_within(
    probes: Mapping[str, Probe],
    deadline_s: float,
    refused: Mapping[str, Callable[[requests.Response], bool]] | None = None,
) -> dict[str, requests.Response]:
    """Call every probe until it is refused (401 unless ``refused`` says otherwise), each
    at most once per ``POLL_EVERY_S``, for at most ``deadline_s``; each one's refusal. Fails
    naming the probes still accepted. (A refusal seen is not repeated: another instance may
    still hold the key in its cache until the TTL has passed.)"""
    start = time.monotonic()
    pending = dict(probes)
    last: dict[str, requests.Response] = {}
    while pending and time.monotonic() - start < deadline_s:
        round_start = time.monotonic()
        for name, probe in list(pending.items()):
            last[name] = probe()
            if (refused or {}).get(name, unauthorized)(last[name]):
                del pending[name]
        if pending:
            time.sleep(max(0.0, POLL_EVERY_S - (time.monotonic() - round_start)))
    still = {n: f"{last[n].status_code} {last[n].text[:200]}" for n in pending}
    assert not still, f"still accepted after {deadline_s:.0f}s: {still}"
    return last


def assert_unauthenticated(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert isinstance(error["message"], str) and error["message"]


# --- retailer API keys ---------------------------------------------------------------------


def retailer_probes(stack: dict[str, str], api_key: str, shopper: str) -> dict[str, Probe]:
    """One authenticated call per API that takes a retailer key. Each is accepted (not 401)
    while the key is valid: an event stored (202), no experiences for a shopper who never
    sent one (another than the ingest probe's, whose event the decider may already have
    decided on) and no such erasure request (404 ``not_found``, answered only after
    authentication)."""
    headers = {"X-Api-Key": api_key}
    silent = f"silent-{shopper}"
    experiences = f"{stack['EXPERIENCES_URL']}/v1/experiences"
    erasure = f"{stack['ERASURE_URL']}/v1/erasure-requests/{uuid.uuid4().hex}"
    return {
        "ingest": lambda: post(stack, [event("page_viewed", shopper)], api_key=api_key),
        "experiences": lambda: requests.get(
            experiences, headers={**headers, "X-Shopper-Id": silent}, timeout=TIMEOUT
        ),
        "erasure": lambda: requests.get(erasure, headers=headers, timeout=TIMEOUT),
    }


def assert_retailer_accepted(probes: Mapping[str, Probe]) -> None:
    ingest = probes["ingest"]()
    assert ingest.status_code == 202, ingest.text
    assert ingest.json()["accepted"] == 1
    for name in ("experiences", "erasure"):
        answer = probes[name]()
        assert answer.status_code == 404, f"{name}: {answer.status_code} {answer.text}"
        assert answer.json()["error"]["code"] == "not_found"


def test_a_revoked_retailer_key_is_refused_everywhere_within_the_cache_ttl(
    stack: dict[str, str], unique: str, retailer_key: Callable[[str], str]
) -> None:
    """Once ``revoked: true`` is set on its Firestore document, a retailer key is refused
    (401 ``unauthenticated``) by the event, experiences and privacy APIs within the
    functions' key cache TTL (60 s locally: polled up to TTL + 30 s); another retailer's
    key keeps working."""
    ttl = max(
        cache_ttl_s(IngestSettings, "api_key_cache_ttl_s"),
        cache_ttl_s(ExperiencesSettings, "api_key_cache_ttl_s"),
        cache_ttl_s(ErasureSettings, "api_key_cache_ttl_s"),
    )
    firestore = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"], CREDENTIALS_DATABASE)
    store = FirestoreApiKeyStore(firestore)
    api_key = retailer_key(f"revoked-{unique}")
    shopper = f"shopper-{unique}"
    try:
        probes = retailer_probes(stack, api_key, shopper)
        assert_retailer_accepted(probes)  # and now cached by every function

        record = store.get(hash_api_key(api_key))
        assert record is not None and not record.revoked
        store.put(record.model_copy(update={"revoked": True}))

        refusals = refused_within(probes, ttl + MARGIN_S)
        assert set(refusals) == set(probes)
        for refusal in refusals.values():
            assert_unauthenticated(refusal)
        assert_retailer_accepted(retailer_probes(stack, stack["DEMO_API_KEY"], shopper))
    finally:
        firestore.collection(API_KEYS).document(hash_api_key(api_key)).delete()


# --- CSM access keys -----------------------------------------------------------------------


def login(url: str, key: str) -> requests.Response:
    return requests.post(f"{url}/login", data={"key": key}, timeout=TIMEOUT, allow_redirects=False)


def test_a_revoked_csm_key_is_refused_by_the_api_and_the_back_office_within_the_cache_ttl(
    stack: dict[str, str], unique: str
) -> None:
    """Once its account is marked revoked in Firestore, a CSM key is refused by the JSON
    API (401 ``unauthenticated``, as a Bearer token or ``X-Csm-Key``), the back office
    login ("Unknown or revoked key") and a session opened before; within the campaigns
    function's account cache TTL (30 s locally: polled up to TTL + 30 s). The demo admin
    key keeps working."""
    ttl = cache_ttl_s(CampaignsSettings, "account_cache_ttl_s")
    url = stack["CAMPAIGNS_URL"]
    firestore = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"], CREDENTIALS_DATABASE)
    accounts = FirestoreCsmAccounts(firestore)
    key = issue_csm_key(accounts, f"revoked-{unique}", "analyst", None, datetime.now(UTC))
    try:
        bearer = {"Authorization": f"Bearer {key}"}
        header = {"X-Csm-Key": key}
        session = requests.Session()

        def api(headers: dict[str, str]) -> Probe:
            return lambda: requests.get(f"{url}/v1/campaigns", headers=headers, timeout=TIMEOUT)

        for headers in (bearer, header):
            listed = api(headers)()
            assert listed.status_code == 200, listed.text
            assert isinstance(listed.json()["campaigns"], list)
        opened = session.post(
            f"{url}/login", data={"key": key}, timeout=TIMEOUT, allow_redirects=False
        )
        assert opened.status_code == 303, opened.text
        assert opened.headers["Location"] == "/portfolio"  # the landing page
        page = session.get(f"{url}/campaigns", timeout=TIMEOUT, allow_redirects=False)
        assert page.status_code == 200 and f"revoked-{unique}" in page.text

        account = accounts.get(hash_key(key))
        assert account is not None and not account.revoked
        accounts.put(account.model_copy(update={"revoked": True}))

        refusals = refused_within(
            {
                "bearer": api(bearer),
                "x-csm-key": api(header),
                "login": lambda: login(url, key),
                "session": lambda: session.get(
                    f"{url}/campaigns", timeout=TIMEOUT, allow_redirects=False
                ),
            },
            ttl + MARGIN_S,
            {"session": lambda r: r.is_redirect and r.headers["Location"] == "/login"},
        )
        assert_unauthenticated(refusals["bearer"])
        assert_unauthenticated(refusals["x-csm-key"])
        assert "Unknown or revoked key" in refusals["login"].text
        assert "Set-Cookie" not in refusals["login"].headers
        assert refusals["session"].status_code in (302, 303)

        demo = {"Authorization": f"Bearer {stack['DEMO_CSM_KEY']}"}
        assert api(demo)().status_code == 200
        assert login(url, stack["DEMO_CSM_KEY"]).status_code == 303
    finally:
        remove(stack, keys=[key])
