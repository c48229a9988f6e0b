"""The campaigns function over HTTP: the JSON API and the back office's pages.

JSON API (credentials: ``Authorization: Bearer cwc_...`` or ``X-Csm-Key``):

- ``GET /v1/campaigns``, ``POST /v1/campaigns``
- ``GET /v1/campaigns/{id}``, ``PATCH /v1/campaigns/{id}``
- ``POST /v1/campaigns/{id}/activate|pause|archive``
- ``GET /v1/campaigns/{id}/audit``, ``GET /v1/campaigns/{id}/report``
- ``GET /openapi.json``

Back office (server-rendered pages): the key is given once on ``/login``, which opens a
server-side session (``shared.campaigns.sessions``); the HttpOnly, SameSite=Strict cookie
holds only the session's random id. ``POST /logout`` ends it. Every POST of a page carries
the session's CSRF token (403 otherwise); failed logins are limited per client (429).
Pages: ``/campaigns``, ``/campaigns/new``, ``/campaigns/{id}``, ``/campaigns/{id}/report``.

Every refusal has a status and a body ``{"error": {"code", "message", ...}}``; a campaign
outside the caller's scope is a 404, as if it did not exist.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from shared.campaigns import back_office
from shared.campaigns.admin import (
    AdminDependencies,
    AdminError,
    CsmAccount,
    audit_of,
    audit_records,
    authenticate,
    change_status,
    create_campaign,
    get_campaign,
    list_campaigns,
    update_campaign,
)
from shared.campaigns.catalogue import CatalogueQuery
from shared.campaigns.exports import list_csv, report_csv
from shared.campaigns.model import Campaign, Creative
from shared.campaigns.portfolio import ListQuery, portfolio_alerts, select
from shared.campaigns.sessions import (
    BackOfficeSession,
    LoginThrottle,
    SessionPolicy,
    SessionStore,
    close,
    csrf_ok,
    open_session,
    resume,
)
from shared.campaigns.stats import CampaignStatsStore
from shared.platform.errors import StoreUnavailableError
from shared.platform.http import ERROR_SCHEMA, error_response, header, load_json

log = logging.getLogger(__name__)

COOKIE = "cw_session"
CSRF_FIELD = "csrf_token"
MAX_BODY_BYTES = 256 * 1024
ReportFunction = Callable[[Campaign, datetime], dict[str, Any]]
# A campaign as shoppers see it: each sample step's label and experiences (JSON-ready);
# the decision engine's answers (``shared.decisions.previews``, wired in composition).
PreviewFunction = Callable[[Campaign, datetime], list[dict[str, Any]]]


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    form: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str = ""
    query: Mapping[str, str] = field(default_factory=dict)  # the first value of each
    form_lists: Mapping[str, Sequence[str]] = field(default_factory=dict)  # every value

    def header(self, name: str) -> str | None:
        return header(self.headers, name)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class CampaignsDependencies:
    admin: AdminDependencies
    report: ReportFunction
    sessions: SessionStore
    session_policy: SessionPolicy
    login_throttle: LoginThrottle
    stats: CampaignStatsStore
    preview: PreviewFunction


def _json(status: int, body: Any, **headers: str) -> HttpResponse:
    return HttpResponse(status, json.dumps(body), headers=dict(headers))


def _error(status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    return _json(status, {"error": {"code": code, "message": message, **extra}})


def _admin_error(exc: AdminError) -> HttpResponse:
    return _error(exc.status, exc.code, exc.message, **exc.details)


_API = re.compile(r"^/v1/campaigns(?:/([^/]+))?(?:/(activate|pause|archive|audit|report))?/?$")
_PAGE = re.compile(
    r"^/campaigns(?:/([^/]+))?(?:/(activate|pause|archive|report|report\.csv|preview|duplicate))?/?$"
)
# Not /static/: functions-framework's Flask app answers that path itself (404).
_STATIC = re.compile(r"^/assets/([a-z]+\.(?:js|css))$")


def _api_key(request: HttpRequest) -> str | None:
    authorization = request.header("Authorization") or ""
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return request.header("X-Csm-Key")


def _api(
    request: HttpRequest, match: re.Match[str], deps: CampaignsDependencies, now: datetime
) -> HttpResponse:
    account = authenticate(deps.admin.accounts, _api_key(request))
    if account is None:
        return _error(401, "unauthenticated", "missing or unknown CSM key (Authorization: Bearer)")
    campaign_id, action = match.group(1), match.group(2)
    method = request.method
    if campaign_id is None:
        if method == "GET":
            campaigns = list_campaigns(account, deps.admin)
            return _json(200, {"campaigns": [c.model_dump(mode="json") for c in campaigns]})
        if method == "POST":
            data = _body(request)
            return _json(
                201, create_campaign(account, data, deps.admin, now).model_dump(mode="json")
            )
        return _error(405, "method_not_allowed", "use GET or POST", allow="GET, POST")
    if action is None:
        if method == "GET":
            return _json(
                200, get_campaign(account, campaign_id, deps.admin).model_dump(mode="json")
            )
        if method == "PATCH":
            data = _body(request)
            updated = update_campaign(account, campaign_id, data, deps.admin, now)
            return _json(200, updated.model_dump(mode="json"))
        return _error(405, "method_not_allowed", "use GET or PATCH", allow="GET, PATCH")
    if action in ("audit", "report"):
        if method != "GET":
            return _error(405, "method_not_allowed", "use GET", allow="GET")
        if action == "audit":
            records = audit_of(account, campaign_id, deps.admin)
            return _json(200, {"audit": [r.model_dump(mode="json") for r in records]})
        campaign = get_campaign(account, campaign_id, deps.admin)
        return _json(200, deps.report(campaign, now))
    if method != "POST":
        return _error(405, "method_not_allowed", "use POST", allow="POST")
    changed = change_status(account, campaign_id, action, deps.admin, now)  # type: ignore[arg-type]
    return _json(200, changed.model_dump(mode="json"))


def _body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise AdminError(413, "too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    try:
        data = load_json(request.body or b"null")
    except ValueError as exc:
        raise AdminError(400, "invalid_json", f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AdminError(400, "invalid_json", "the body is a JSON object of campaign fields")
    return data


# --- the back office's pages -----------------------------------------------------------


def _redirect(location: str, **headers: str) -> HttpResponse:
    return HttpResponse(303, "", "text/html; charset=utf-8", {"Location": location, **headers})


def _html(status: int, body: str, **headers: str) -> HttpResponse:
    return HttpResponse(
        status,
        body,
        "text/html; charset=utf-8",
        {
            # Scripts: only the same-origin files of ``back_office.STATIC_FILES`` (no inline
            # script, no eval); they fetch the catalogue from this origin only.
            "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self'; img-src https: data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            **headers,
        },
    )


def _client(request: HttpRequest) -> str:
    """The caller's address: the last ``X-Forwarded-For`` entry (the one Google's front
    end appends in the cloud; earlier ones are the client's own say), else the peer's."""
    forwarded = [a.strip() for a in (request.header("X-Forwarded-For") or "").split(",")]
    return next((a for a in reversed(forwarded) if a), request.remote_addr)


def _cookie(request: HttpRequest, value: str, max_age: int) -> str:
    secure = "; Secure" if (request.header("X-Forwarded-Proto") or "") == "https" else ""
    return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"


def _split(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]


_OPTIONAL = (
    "brand",
    "generosity_min_pct",
    "reward",
    "budget",
    "win_probability",
    "prize_value",
    "max_per_session",
)
_REQUIRED_SCALARS = (
    "name",
    "experience_type",
    "generosity_pct",
    "threshold",
    "control_share",
    "explore_share",
)


def _moment(text: str) -> str:
    """A datetime-local field (no zone) is taken as UTC."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text):
        return f"{text}:00+00:00"
    return text


def form_to_data(form: Mapping[str, str], *, creating: bool) -> dict[str, Any]:
    """The campaign fields of a submitted form (empty optional fields clear them)."""
    data: dict[str, Any] = {}
    if creating:
        data["campaign_id"] = form.get("campaign_id", "").strip()
        data["status"] = "active" if form.get("activate") == "on" else "draft"
    for name in _REQUIRED_SCALARS:
        value = form.get(name, "").strip()
        if value:
            data[name] = value
    for name in _OPTIONAL:
        value = form.get(name, "").strip()
        data[name] = value or None
    for name in ("starts_at", "ends_at"):
        data[name] = _moment(form.get(name, ""))
    for name in ("retailer_ids", "targeted_product_ids", "targeted_brands", "targeted_categories"):
        data[name] = _split(form.get(name, ""))
    data["allow_unseen_targets"] = form.get("allow_unseen_targets") == "on"
    title = form.get("creative_title", "").strip()
    if title:
        data["creative"] = {
            "title": title,
            "text": form.get("creative_text", "").strip(),
            "image_url": form.get("creative_image_url", "").strip() or None,
        }
    else:
        data["creative"] = None
    return data


def _page(
    request: HttpRequest,
    match: re.Match[str] | None,
    deps: CampaignsDependencies,
    now: datetime,
) -> HttpResponse:
    if request.path in ("/", ""):
        return _redirect("/portfolio")
    static = _STATIC.match(request.path)
    if static is not None and request.method == "GET":
        return _static(static.group(1))
    if request.path.rstrip("/") == "/login":
        if request.method == "POST":
            return _login(request, deps, now)
        return _html(200, back_office.login_page())
    resumed = resume(
        deps.sessions,
        deps.admin.accounts,
        request.cookies.get(COOKIE),
        deps.session_policy,
        now,
    )
    if request.path.rstrip("/") == "/logout":
        if request.method != "POST":
            return _redirect("/campaigns")
        if resumed is not None:
            if not csrf_ok(resumed[0], request.form.get(CSRF_FIELD)):
                return _csrf_refused(resumed)
            close(deps.sessions, resumed[0])
        return _redirect("/login", **{"Set-Cookie": _cookie(request, "", 0)})
    path = request.path.rstrip("/")
    catalogue = _CATALOGUE.match(path)
    if match is None and path not in _OTHER_PAGES and catalogue is None:
        return _html(404, back_office.message_page("Not found", f"No page {request.path}."))
    if resumed is None:
        if COOKIE in request.cookies:  # unknown, expired or revoked: drop it
            return _redirect("/login", **{"Set-Cookie": _cookie(request, "", 0)})
        return _redirect("/login")
    session, account = resumed
    if request.method == "POST" and not csrf_ok(session, request.form.get(CSRF_FIELD)):
        return _csrf_refused(resumed)
    try:
        if match is None:
            response = _other_page(request, path, catalogue, account, deps, now)
        else:
            campaign_id, action = match.group(1), match.group(2)
            response = _page_for(request, account, campaign_id, action, deps, now)
    except AdminError as exc:
        if exc.status == 404:
            response = _html(404, back_office.message_page("Not found", exc.message, account))
        elif exc.status == 403 and exc.code == "read_only":
            response = _html(403, back_office.message_page("Read only", exc.message, account))
        else:
            raise
    return _with_csrf(response, session)


def _with_csrf(response: HttpResponse, session: BackOfficeSession) -> HttpResponse:
    """Every form of a page carries the session's CSRF token."""
    if not response.content_type.startswith("text/html"):
        return response
    body = back_office.protect_forms(response.body, CSRF_FIELD, session.csrf_token)
    return HttpResponse(response.status, body, response.content_type, response.headers)


def _csrf_refused(resumed: tuple[BackOfficeSession, CsmAccount]) -> HttpResponse:
    page = back_office.message_page(
        "Refused",
        "This form's security token (csrf_token) is missing or wrong: nothing was changed. "
        "Reload the page and submit it again.",
        resumed[1],
    )
    return _with_csrf(_html(403, page), resumed[0])


def _login(request: HttpRequest, deps: CampaignsDependencies, now: datetime) -> HttpResponse:
    client = _client(request)
    wait = deps.login_throttle.retry_after(client, now)
    if wait is not None:
        log.warning("back-office logins refused: too many failures from a client")
        page = back_office.login_page(
            f"Too many failed logins from your address: try again in {wait} s."
        )
        return _html(429, page, **{"Retry-After": str(wait)})
    account = authenticate(deps.admin.accounts, request.form.get("key", "").strip())
    if account is None:
        deps.login_throttle.failed(client, now)
        return _html(401, back_office.login_page("Unknown or revoked key."))
    previous = resume(
        deps.sessions, deps.admin.accounts, request.cookies.get(COOKIE), deps.session_policy, now
    )
    if previous is not None:  # a login always gets a new id (no session fixation)
        close(deps.sessions, previous[0])
    session_id, _ = open_session(deps.sessions, account, deps.session_policy, now)
    cookie = _cookie(request, session_id, deps.session_policy.absolute_s)
    return _redirect("/portfolio", **{"Set-Cookie": cookie})


def _page_for(
    request: HttpRequest,
    account: CsmAccount,
    campaign_id: str | None,
    action: str | None,
    deps: CampaignsDependencies,
    now: datetime,
) -> HttpResponse:
    method = request.method
    if campaign_id is None:
        if method != "GET":
            return _html(405, back_office.message_page("Not allowed", "Use the form.", account))
        return _list(request, account, deps, now)
    if campaign_id == "new" and action is None:
        if method == "GET":
            if not account.can_write:
                raise AdminError(403, "read_only", "the analyst role cannot create campaigns")
            return _html(200, back_office.form_page(account, None, {}, []))
        data = form_to_data(request.form, creating=True)
        try:
            created = create_campaign(account, data, deps.admin, now)
        except AdminError as exc:
            if exc.code == "read_only":
                raise
            return _html(exc.status, back_office.form_page(account, None, request.form, [exc]))
        return _redirect(f"/campaigns/{quote(created.campaign_id)}")
    if action is None:
        if method == "GET":
            campaign = get_campaign(account, campaign_id, deps.admin)
            audit = audit_records(campaign, deps.admin)
            return _html(200, back_office.form_page(account, campaign, None, [], audit))
        data = form_to_data(request.form, creating=False)
        try:
            update_campaign(account, campaign_id, data, deps.admin, now)
        except AdminError as exc:
            if exc.status == 404 or exc.code == "read_only":
                raise
            campaign = get_campaign(account, campaign_id, deps.admin)
            audit = audit_records(campaign, deps.admin)
            page = back_office.form_page(account, campaign, request.form, [exc], audit)
            return _html(exc.status, page)
        return _redirect(f"/campaigns/{quote(campaign_id)}?saved=1")
    if action in _VIEWS:
        if method != "GET":
            return _html(405, back_office.message_page("Not allowed", "Use GET.", account))
        return _view(action, account, get_campaign(account, campaign_id, deps.admin), deps, now)
    if method != "POST":
        return _html(405, back_office.message_page("Not allowed", "Use the buttons.", account))
    try:
        change_status(account, campaign_id, action, deps.admin, now)  # type: ignore[arg-type]
    except AdminError as exc:
        if exc.status == 404 or exc.code == "read_only":
            raise
        return _html(exc.status, back_office.message_page("Refused", exc.message, account))
    return _redirect("/campaigns")


_VIEWS = ("report", "report.csv", "preview", "duplicate")
_OTHER_PAGES = ("/portfolio", "/campaigns.csv", "/bulk")
_CATALOGUE = re.compile(r"^/catalogue/(products|brands|categories)$")


@functools.cache
def _asset(name: str) -> str | None:
    """A file of ``back_office.STATIC_FILES``, read once per instance."""
    found = back_office.STATIC_FILES.get(name)
    return found[0].read_text(encoding="utf-8") if found and found[0].is_file() else None


def _static(name: str) -> HttpResponse:
    """The pages' own scripts, and the demo shop's widget and style sheet (public code)."""
    body = _asset(name)
    if body is None:
        return _error(404, "not_found", f"no file {name}")
    return HttpResponse(
        200,
        body,
        back_office.STATIC_FILES[name][1],
        {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


def _csv(name: str, body: str) -> HttpResponse:
    return HttpResponse(
        200,
        body,
        "text/csv; charset=utf-8",
        {
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def _list(
    request: HttpRequest, account: CsmAccount, deps: CampaignsDependencies, now: datetime
) -> HttpResponse:
    query, problems = ListQuery.parse(request.query)
    campaigns = list_campaigns(account, deps.admin)
    stats = deps.stats.all()
    page = select(campaigns, stats, query, now)
    as_of = max((s.computed_at for s in stats.values()), default=None)
    return _html(200, back_office.list_page(account, query, page, as_of, problems))


def _view(
    action: str,
    account: CsmAccount,
    campaign: Campaign,
    deps: CampaignsDependencies,
    now: datetime,
) -> HttpResponse:
    if action == "report":
        return _html(200, back_office.report_page(account, deps.report(campaign, now)))
    if action == "report.csv":
        report = deps.report(campaign, now)
        return _csv(f"report-{campaign.campaign_id}.csv", report_csv(report))
    if action == "preview":
        return _html(200, back_office.preview_page(account, campaign, deps.preview(campaign, now)))
    if not account.can_write:
        raise AdminError(403, "read_only", "the analyst role cannot create campaigns")
    values = back_office.duplicate_values(campaign)
    title = f"Duplicate of {campaign.name}"
    return _html(200, back_office.form_page(account, None, values, [], title=title))


MAX_BULK = 500


def _other_page(
    request: HttpRequest,
    path: str,
    catalogue: re.Match[str] | None,
    account: CsmAccount,
    deps: CampaignsDependencies,
    now: datetime,
) -> HttpResponse:
    if path == "/bulk":
        if request.method != "POST":
            return _html(405, back_office.message_page("Not allowed", "Use the list.", account))
        return _bulk(request, account, deps, now)
    if request.method != "GET":
        return _html(405, back_office.message_page("Not allowed", "Use GET.", account))
    if catalogue is not None:
        return _catalogue(request, catalogue.group(1), account, deps)
    campaigns = list_campaigns(account, deps.admin)
    stats = deps.stats.all()
    if path == "/campaigns.csv":
        query, _ = ListQuery.parse(request.query)
        everything = query.model_copy(update={"page": 1, "per_page": max(1, len(campaigns))})
        rows = select(campaigns, stats, everything, now).rows
        return _csv(f"campaigns-{now:%Y%m%d-%H%M}.csv", list_csv(rows))
    live = [c for c in campaigns if c.status == "active" and c.runs_at(now)]
    budgeted = [c for c in live if c.budget is not None]
    spent = sum(stats[c.campaign_id].spent for c in budgeted if c.campaign_id in stats)
    budget = float(sum(c.budget or 0 for c in budgeted))
    as_of = max((s.computed_at for s in stats.values()), default=None)
    alerts = portfolio_alerts(campaigns, stats, now)
    page = back_office.portfolio_page(account, campaigns, alerts, as_of, spent, budget, now)
    return _html(200, page)


def _catalogue(
    request: HttpRequest, kind: str, account: CsmAccount, deps: CampaignsDependencies
) -> HttpResponse:
    """A picker's search (JSON): what the read models saw at the form's retailers, those
    of them in the account's scope only (others are dropped, never searched)."""
    scope = account.retailer_ids
    requested = _split(request.query.get("retailers", ""))
    retailers = [r for r in requested if scope is None or r in scope]
    try:
        query = CatalogueQuery(
            text=request.query.get("q", ""),
            page=request.query.get("page", "1"),
            per_page=request.query.get("per_page", "20"),
        )
    except ValidationError as exc:
        reasons = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        return _error(422, "invalid_query", reasons)
    if not retailers:
        return _json(200, {"items": [], "page": 1, "per_page": query.per_page, "has_next": False})
    catalogue = deps.admin.products
    found: BaseModel
    if kind == "products":
        found = catalogue.search_products(retailers, query)
    elif kind == "brands":
        found = catalogue.search_brands(retailers, query)
    else:
        found = catalogue.search_categories(retailers, query)
    return _json(200, found.model_dump(mode="json"))


def _bulk(
    request: HttpRequest, account: CsmAccount, deps: CampaignsDependencies, now: datetime
) -> HttpResponse:
    """Pause or archive the ticked campaigns, each through ``change_status`` (checked and
    audited one by one, as from its own page); the page says what changed and what not."""
    action = request.form.get("action", "")
    ids = list(dict.fromkeys(request.form_lists.get("campaign_id", ())))
    back = request.form.get("back", "/campaigns")
    if not back.startswith("/campaigns") or "//" in back:
        back = "/campaigns"
    if action not in ("pause", "archive"):
        message = "Choose pause or archive."
        return _html(422, back_office.message_page("Refused", message, account))
    if not ids or len(ids) > MAX_BULK:
        message = f"Tick between 1 and {MAX_BULK} campaigns."
        return _html(422, back_office.message_page("Refused", message, account))
    done, refused = [], []
    for campaign_id in ids:
        try:
            change_status(account, campaign_id, action, deps.admin, now)  # type: ignore[arg-type]
            done.append(campaign_id)
        except AdminError as exc:
            if exc.code == "read_only":
                raise
            refused.append((campaign_id, exc.message))
    page = back_office.bulk_page(account, action, done, refused, back)
    return _html(200 if not refused else 207, page)


def handle(
    request: HttpRequest, deps: Callable[[], CampaignsDependencies], now: datetime
) -> HttpResponse:
    path = request.path
    try:
        if path.rstrip("/") == "/openapi.json" and request.method == "GET":
            return _json(200, openapi())
        api = _API.match(path)
        if api:
            return _api(request, api, deps(), now)
        if path.startswith("/v1/"):
            return _error(404, "not_found", f"no route {request.method} {path}")
        return _page(request, _PAGE.match(path), deps(), now)
    except AdminError as exc:
        return _admin_error(exc)
    except StoreUnavailableError:
        return _error(503, "unavailable", "a store is unavailable; retry")


# --- OpenAPI ---------------------------------------------------------------------------


def openapi() -> dict[str, Any]:
    campaign = Campaign.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = campaign.pop("$defs", {})
    definitions.setdefault("Creative", Creative.model_json_schema())

    def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    ref = {"$ref": "#/components/schemas/Campaign"}
    new_campaign = {"$ref": "#/components/schemas/NewCampaign"}
    id_param = {
        "name": "campaign_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    common = {
        "401": error_response("Missing or unknown CSM key"),
        "404": error_response("No such campaign in your scope"),
    }
    writes = {
        **common,
        "400": error_response("Not a JSON object"),
        "403": error_response("Read-only role, or a retailer outside your scope"),
        "409": error_response(
            "Conflicting campaign (only those you can see are named), an admin's id taken, "
            "archived, or invalid transition"
        ),
        "422": error_response(
            "Invalid fields (dates, budgets...), unknown retailers or products (details)"
        ),
    }
    status_action = {
        "post": {
            "parameters": [id_param],
            "responses": {"200": ok("The campaign, changed", ref), **writes},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cartwise campaigns API",
            "version": "1.0.0",
            "description": "Campaigns of the CSMs: roles admin, csm (scoped to retailers) "
            "and analyst (read only). Every change is audited.",
        },
        "components": {
            "schemas": {
                **definitions,
                "Campaign": campaign,
                "NewCampaign": {
                    **campaign,
                    "title": "NewCampaign",
                    "description": "A campaign to create: campaign_id is optional",
                    "required": [
                        r
                        for r in campaign.get("required", [])
                        if r not in ("campaign_id", "status")
                    ],
                },
                "Report": {
                    "type": "object",
                    "description": "docs/CAMPAIGNS.md: the report's fields",
                },
                "Error": ERROR_SCHEMA,
            },
            "securitySchemes": {
                "csmKey": {"type": "http", "scheme": "bearer"},
                "backOfficeSession": {"type": "apiKey", "in": "cookie", "name": COOKIE},
            },
        },
        "security": [{"csmKey": []}],
        "paths": {
            "/v1/campaigns": {
                "get": {
                    "operationId": "listCampaigns",
                    "responses": {"200": ok("The campaigns in your scope", {}), **common},
                },
                "post": {
                    "operationId": "createCampaign",
                    "description": "campaign_id is optional. An account scoped to retailers "
                    "gets the id it asks for followed by '-' and 8 random hex digits (without "
                    "one: 'c-' and 16); an admin gets the id it asks for (409 already_exists "
                    "if taken), or 'c-' and 16 random hex digits. The answer's campaign_id is "
                    "the campaign's.",
                    "requestBody": {"content": {"application/json": {"schema": new_campaign}}},
                    "responses": {"201": ok("Created", ref), **writes},
                },
            },
            "/v1/campaigns/{campaign_id}": {
                "get": {
                    "operationId": "getCampaign",
                    "parameters": [id_param],
                    "responses": {"200": ok("The campaign", ref), **common},
                },
                "patch": {
                    "operationId": "updateCampaign",
                    "parameters": [id_param],
                    "requestBody": {"content": {"application/json": {"schema": {}}}},
                    "responses": {"200": ok("The campaign, changed", ref), **writes},
                },
            },
            "/v1/campaigns/{campaign_id}/activate": status_action,
            "/v1/campaigns/{campaign_id}/pause": status_action,
            "/v1/campaigns/{campaign_id}/archive": status_action,
            "/v1/campaigns/{campaign_id}/audit": {
                "get": {
                    "operationId": "getCampaignAudit",
                    "parameters": [id_param],
                    "responses": {"200": ok("Who changed what, when", {}), **common},
                }
            },
            "/v1/campaigns/{campaign_id}/report": {
                "get": {
                    "operationId": "getCampaignReport",
                    "parameters": [id_param],
                    "responses": {
                        "200": ok("The report", {"$ref": "#/components/schemas/Report"}),
                        **common,
                    },
                }
            },
            **{
                f"/catalogue/{kind}": {
                    "get": {
                        "operationId": f"searchCatalogue{kind.capitalize()}",
                        "description": f"The back office's {kind} picker: what the read models "
                        "saw at the given retailers (those of the session's scope), whose id "
                        "or name holds q (case-insensitive); prefix matches first, then the "
                        "most seen.",
                        "security": [{"backOfficeSession": []}],
                        "parameters": [
                            {"name": "q", "in": "query", "schema": {"type": "string"}},
                            {"name": "page", "in": "query", "schema": {"type": "integer"}},
                            {"name": "per_page", "in": "query", "schema": {"type": "integer"}},
                            {
                                "name": "retailers",
                                "in": "query",
                                "description": "comma-separated retailer ids",
                                "schema": {"type": "string"},
                            },
                        ],
                        "responses": {
                            "200": ok("A page of items, and whether there is a next", {}),
                            "303": {"description": "No session: to /login"},
                            "422": error_response("q, page or per_page out of bounds"),
                        },
                    }
                }
                for kind in ("products", "brands", "categories")
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "security": [],
                    "responses": {"200": {"description": "This document"}},
                }
            },
        },
    }
