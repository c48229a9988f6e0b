"""The campaigns back office's rules: who may do what, what a valid campaign is, the audit.

Customer success managers (CSMs) have their own credentials, separate from the retailers'
tracker keys: a random access key (``cwc_...``) whose SHA-256 only is stored, with a role:

- ``admin``: every retailer; reads and writes;
- ``csm``: the retailers of its scope; reads and writes their campaigns;
- ``analyst``: reads only (every retailer, or a scope if one is given).

A campaign is visible to an account when every one of its retailers is in the account's
scope; otherwise it does not exist for that account (404, never a 403 that would leak it),
and no answer tells it apart from one that never existed: an account scoped to retailers
never chooses a campaign id outright (its id is generated, see ``campaign_id_for``), and a
conflict with a campaign it cannot see is not described.
Every change is written to the audit log: who, when, what (the fields before and after).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.campaigns.catalogue import Catalogue, refusal_message
from shared.campaigns.model import (
    Campaign,
    CampaignAction,
    CampaignChange,
    CampaignChanges,
    CampaignStatus,
    CampaignStore,
)
from shared.contract.events import IDENTIFIER
from shared.platform.errors import StoreUnavailableError
from shared.retailers.keys import hash_api_key

CSM_KEY_PREFIX = "cwc_"
Role = Literal["admin", "csm", "analyst"]
Action = CampaignAction


# --- accounts --------------------------------------------------------------------------


class CsmAccount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key_hash: str
    csm_id: str = Field(pattern=IDENTIFIER)
    role: Role
    retailer_ids: list[str] | None = Field(
        default=None, description="The scope; None: every retailer (admin, analyst)"
    )
    created_at: datetime
    revoked: bool = False

    @model_validator(mode="after")
    def _scope(self) -> CsmAccount:
        if self.role == "csm" and not self.retailer_ids:
            raise ValueError("a csm account is scoped to at least one retailer")
        if self.role == "admin" and self.retailer_ids is not None:
            raise ValueError("an admin account covers every retailer")
        return self

    @property
    def can_write(self) -> bool:
        return self.role in ("admin", "csm")

    def covers(self, retailer_ids: Iterable[str]) -> bool:
        return self.retailer_ids is None or set(retailer_ids) <= set(self.retailer_ids)

    def sees(self, campaign: Campaign) -> bool:
        return self.covers(campaign.retailer_ids)


class CsmAccountStore(Protocol):
    def put(self, account: CsmAccount) -> None: ...

    def get(self, key_hash: str) -> CsmAccount | None: ...


hash_key = hash_api_key  # CSM keys are hashed as the retailers' API keys are


def issue_csm_key(
    store: CsmAccountStore,
    csm_id: str,
    role: Role,
    retailer_ids: Sequence[str] | None,
    now: datetime,
    key: str | None = None,
) -> str:
    """Create (or, with ``key``, register) a CSM's access key; the clear key is returned
    once and never stored."""
    key = key or CSM_KEY_PREFIX + secrets.token_urlsafe(32)
    store.put(
        CsmAccount(
            key_hash=hash_key(key),
            csm_id=csm_id,
            role=role,
            retailer_ids=list(retailer_ids) if retailer_ids is not None else None,
            created_at=now,
        )
    )
    return key


def authenticate(store: CsmAccountStore, key: str | None) -> CsmAccount | None:
    if not key:
        return None
    account = store.get(hash_key(key))
    if account is None or account.revoked:
        return None
    return account


# --- the audit log ---------------------------------------------------------------------


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    audit_id: str
    campaign_id: str
    csm_id: str
    role: Role
    action: Action
    at: datetime
    changes: dict[str, dict[str, Any]] = Field(
        description="field -> {before, after} (before is null on create)"
    )


class AuditLog(Protocol):
    def append(self, record: AuditRecord) -> None: ...

    def of_campaign(self, campaign_id: str) -> list[AuditRecord]: ...


# --- what the store must know: retailers and products -----------------------------------


class RetailerDirectory(Protocol):
    def unknown(self, retailer_ids: Sequence[str]) -> set[str]: ...


class ProductCatalog(Catalogue, Protocol):
    """The catalogue port (shared/campaigns/catalogue.py): the campaign check asks it for
    the targeted products, brands and categories never seen at the campaign's retailers
    (with the nearest known ones); the back office's pickers search it."""


# --- errors ----------------------------------------------------------------------------


@dataclass
class AdminError(Exception):
    """A refusal: HTTP status, machine-readable code, message, optional details."""

    status: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _not_found(campaign_id: str) -> AdminError:
    return AdminError(404, "not_found", f"no campaign {campaign_id}")


# --- the input of the form and the API -------------------------------------------------

EDITABLE = (
    "name",
    "brand",
    "retailer_ids",
    "experience_type",
    "starts_at",
    "ends_at",
    "targeted_product_ids",
    "targeted_brands",
    "targeted_categories",
    "generosity_pct",
    "generosity_min_pct",
    "threshold",
    "reward",
    "budget",
    "win_probability",
    "prize_value",
    "control_share",
    "explore_share",
    "max_per_session",
    "allow_unseen_targets",
    "creative",
)
CREATABLE = ("campaign_id", "status", *EDITABLE)


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in e["loc"]) or "campaign",
            "reason": e["msg"].removeprefix("Value error, "),
        }
        for e in exc.errors()
    ]


def _invalid(errors: list[dict[str, str]]) -> AdminError:
    summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return AdminError(422, "invalid_campaign", summary, {"fields": errors})


def _build(data: Mapping[str, Any]) -> Campaign:
    try:
        return Campaign.model_validate(dict(data))
    except ValidationError as exc:
        raise _invalid(_field_errors(exc)) from exc


# --- the checks against the other campaigns and the stores -------------------------------


def _targets_overlap(a: Campaign, b: Campaign) -> bool:
    return bool(
        set(a.targeted_product_ids) & set(b.targeted_product_ids)
        or set(a.targeted_brands) & set(b.targeted_brands)
        or set(a.targeted_categories) & set(b.targeted_categories)
    )


def conflicts(candidate: Campaign, others: Iterable[Campaign]) -> list[Campaign]:
    """Campaigns that would compete with ``candidate`` for the same shoppers: not
    archived, same experience type, a retailer in common, overlapping periods, and a
    targeted product, brand or category in common."""
    return [
        other
        for other in others
        if other.campaign_id != candidate.campaign_id
        and other.status != "archived"
        and other.experience_type == candidate.experience_type
        and set(other.retailer_ids) & set(candidate.retailer_ids)
        and other.starts_at < candidate.ends_at
        and candidate.starts_at < other.ends_at
        and _targets_overlap(candidate, other)
    ]


CONFLICT_MESSAGE = (
    "overlaps another campaign of the same type on the same retailers, period and products"
)


@dataclass
class AdminDependencies:
    accounts: CsmAccountStore
    campaigns: CampaignStore
    audit: AuditLog
    retailers: RetailerDirectory
    products: ProductCatalog
    changes: CampaignChanges


def _check(
    candidate: Campaign,
    account: CsmAccount,
    deps: AdminDependencies,
    now: datetime,
    *,
    new_period: bool,
) -> None:
    if not account.covers(candidate.retailer_ids):
        outside = sorted(set(candidate.retailer_ids) - set(account.retailer_ids or ()))
        raise AdminError(
            403,
            "retailer_out_of_scope",
            f"retailers outside your scope: {', '.join(outside)}",
            {"retailer_ids": outside},
        )
    errors: list[dict[str, str]] = []
    if new_period and candidate.ends_at <= now and candidate.status != "archived":
        errors.append({"field": "ends_at", "reason": "the period is already over"})
    if candidate.budget is not None and candidate.budget <= 0:
        errors.append({"field": "budget", "reason": "a budget must be positive"})
    if (
        candidate.budget is not None
        and candidate.prize_value is not None
        and candidate.prize_value > candidate.budget
    ):
        errors.append({"field": "prize_value", "reason": "one prize exceeds the whole budget"})
    if (
        candidate.budget is not None
        and candidate.prize_value is not None
        and candidate.prize_value > 0
        and candidate.budget / candidate.prize_value > MAX_PRIZES_PER_GAME
    ):
        errors.append(
            {
                "field": "budget",
                "reason": f"at most {MAX_PRIZES_PER_GAME:,} prizes per game (budget / prize)",
            }
        )
    if candidate.experience_type == "gamified_promotion" and (
        candidate.win_probability is None or candidate.budget is None
    ):
        errors.append(
            {
                "field": "experience_type",
                "reason": "a gamified promotion needs win_probability, prize_value and budget",
            }
        )
    if errors:
        raise _invalid(errors)
    unknown_retailers = deps.retailers.unknown(candidate.retailer_ids)
    if unknown_retailers:
        raise AdminError(
            422,
            "unknown_retailers",
            f"unknown retailers: {', '.join(sorted(unknown_retailers))}",
            {"retailer_ids": sorted(unknown_retailers)},
        )
    # Targets the engine would match with nothing: never seen at these retailers, as
    # spelt (its match is exact). The refusal names the nearest known ones. A launch (a
    # product or brand not sold there yet) is accepted when the campaign says so.
    catalogue = deps.products
    for code, key, label, wanted, unknown_of in (
        (
            "unknown_products",
            "product_ids",
            "products never seen at these retailers",
            candidate.targeted_product_ids,
            catalogue.unknown_products,
        ),
        (
            "unknown_brands",
            "brands",
            "unknown brands",
            candidate.targeted_brands,
            catalogue.unknown_brands,
        ),
        (
            "unknown_categories",
            "categories",
            "unknown categories",
            candidate.targeted_categories,
            catalogue.unknown_categories,
        ),
    ):
        if not wanted or candidate.allow_unseen_targets:
            continue
        unknown = unknown_of(candidate.retailer_ids, wanted)
        if unknown:
            raise AdminError(
                422,
                code,
                refusal_message(label, unknown),
                {key: sorted(unknown), "suggestions": unknown},
            )
    if candidate.status in ("active", "draft"):
        found = conflicts(candidate, deps.campaigns.competing(candidate))
        if found:
            # Only the campaigns the account sees are named; one it cannot see is not
            # described at all (neither its id, nor that it is outside the scope).
            visible = [c.campaign_id for c in found if account.sees(c)]
            raise AdminError(
                409,
                "conflicting_campaign",
                CONFLICT_MESSAGE + (f": {', '.join(visible)}" if visible else ""),
                {"campaign_ids": visible},
            )


def _diff(before: Campaign | None, after: Campaign) -> dict[str, dict[str, Any]]:
    old = before.model_dump(mode="json") if before else {}
    new = after.model_dump(mode="json")
    return {
        name: {"before": old.get(name), "after": value}
        for name, value in new.items()
        if before is None or old.get(name) != value
    }


def _audit(
    deps: AdminDependencies,
    account: CsmAccount,
    action: Action,
    before: Campaign | None,
    after: Campaign,
    now: datetime,
) -> None:
    deps.audit.append(
        AuditRecord(
            audit_id=f"{after.campaign_id}:{now.strftime('%Y%m%dT%H%M%S%f')}:{secrets.token_hex(4)}",
            campaign_id=after.campaign_id,
            csm_id=account.csm_id,
            role=account.role,
            action=action,
            at=now,
            changes=_diff(before, after),
        )
    )


def _saved(
    deps: AdminDependencies,
    account: CsmAccount,
    action: Action,
    before: Campaign | None,
    after: Campaign,
    now: datetime,
) -> None:
    """Save a change: the campaign, its audit record, then the change published so that
    the retailers' default trees are recompiled within seconds (docs/CAMPAIGNS.md)."""
    deps.campaigns.put(after)
    _audit(deps, account, action, before, after, now)
    retailers = sorted({*(before.retailer_ids if before else ()), *after.retailer_ids})
    change = CampaignChange(
        campaign_id=after.campaign_id,
        action=action,
        retailer_ids=retailers,
        status=after.status,
        changed_at=now,
    )
    try:
        deps.changes.published(change)
    except StoreUnavailableError as exc:
        raise AdminError(
            503,
            "change_not_propagated",
            "the change is saved, but it could not be announced to the decisions: it "
            "takes effect at the next tree compilation (nightly, or `cartwise "
            f"compile-trees`) ({exc})",
            {"campaign_id": after.campaign_id, "status": after.status},
        ) from exc


def _require_write(account: CsmAccount) -> None:
    if not account.can_write:
        raise AdminError(403, "read_only", f"the {account.role} role cannot change campaigns")


# --- the service -----------------------------------------------------------------------


def list_campaigns(account: CsmAccount, deps: AdminDependencies) -> list[Campaign]:
    return sorted(
        (c for c in deps.campaigns.all() if account.sees(c)),
        key=lambda c: (c.status == "archived", c.starts_at, c.campaign_id),
    )


def get_campaign(account: CsmAccount, campaign_id: str, deps: AdminDependencies) -> Campaign:
    campaign = deps.campaigns.get(campaign_id)
    if campaign is None or not account.sees(campaign):
        raise _not_found(campaign_id)
    return campaign


GENERATED_ID_PREFIX = "c"


def campaign_id_for(account: CsmAccount, requested: Any) -> Any:
    """The id of a new campaign. An account whose scope is every retailer (admin) takes
    the id it asks for: it sees every campaign, so "taken" tells it nothing new. An account
    scoped to retailers gets the id it asks for followed by 8 random hex digits (or ``c-``
    and 16 without one): whether another retailer's campaign holds the id it asked for
    changes nothing in the answer. (A non-string id is passed on, to be refused.)"""
    if account.retailer_ids is None:
        return requested if requested not in (None, "") else _generated(GENERATED_ID_PREFIX, 8)
    if requested in (None, ""):
        return _generated(GENERATED_ID_PREFIX, 8)
    if not isinstance(requested, str):
        return requested
    return _generated(requested, 4)


def _generated(label: str, random_bytes: int) -> str:
    return f"{label}-{secrets.token_hex(random_bytes)}"


def create_campaign(
    account: CsmAccount, data: Mapping[str, Any], deps: AdminDependencies, now: datetime
) -> Campaign:
    _require_write(account)
    extra = sorted(set(data) - set(CREATABLE))
    if extra:
        raise _invalid([{"field": name, "reason": "not a campaign field"} for name in extra])
    data = {**data, "campaign_id": campaign_id_for(account, data.get("campaign_id"))}
    status = data.get("status", "draft")
    if status not in ("draft", "active"):
        raise _invalid([{"field": "status", "reason": "a new campaign is draft or active"}])
    candidate = _build({"status": "draft", **data})
    if candidate.status == "active":
        candidate = candidate.model_copy(update={"activated_at": now})
    if deps.campaigns.get(candidate.campaign_id) is not None:
        # Only an account that sees every campaign chooses its ids (campaign_id_for): the
        # campaign that holds the id is one it may see.
        raise AdminError(409, "already_exists", f"campaign {candidate.campaign_id} exists")
    _check(candidate, account, deps, now, new_period=True)
    _saved(deps, account, "create", None, candidate, now)
    return candidate


# A game's budget is paid in slots of one prize each (docs/REWARDS.md): more than this many
# is a typo (a budget of 10,000,000 for a prize of 1), and the slot ledger is listed whole.
MAX_PRIZES_PER_GAME = 100_000


def _keeps_the_budget_invariant(current: Campaign, candidate: Campaign) -> None:
    """A game that was ever playable (not a draft) may have paid wins of its prize: a lower
    prize would give the same budget more slots than it holds, a lower budget fewer than
    are taken. Both are refused; the budget may grow."""
    if current.experience_type != "gamified_promotion" or current.status == "draft":
        return
    errors = []
    if candidate.prize_value != current.prize_value:
        errors.append(
            {
                "field": "prize_value",
                "reason": "a game's prize cannot change once it was active (end it and "
                "create another)",
            }
        )
    if (
        current.budget is not None
        and candidate.budget is not None
        and candidate.budget < current.budget
    ):
        errors.append(
            {"field": "budget", "reason": "a game's budget can only grow once it was active"}
        )
    if errors:
        raise _invalid(errors)


def update_campaign(
    account: CsmAccount,
    campaign_id: str,
    data: Mapping[str, Any],
    deps: AdminDependencies,
    now: datetime,
) -> Campaign:
    current = get_campaign(account, campaign_id, deps)
    _require_write(account)
    if current.status == "archived":
        raise AdminError(409, "archived", "an archived campaign cannot change")
    refused = sorted(set(data) - set(EDITABLE))
    if refused:
        raise _invalid(
            [{"field": name, "reason": "not editable (use the status actions)"} for name in refused]
        )
    candidate = _build({**current.model_dump(mode="json"), **data})
    _keeps_the_budget_invariant(current, candidate)
    period_changed = (candidate.starts_at, candidate.ends_at) != (
        current.starts_at,
        current.ends_at,
    )
    if candidate == current:
        return current
    _check(candidate, account, deps, now, new_period=period_changed)
    _saved(deps, account, "update", current, candidate, now)
    return candidate


_TRANSITIONS: dict[Action, tuple[tuple[CampaignStatus, ...], CampaignStatus]] = {
    "activate": (("draft", "paused"), "active"),
    "pause": (("active",), "paused"),
    "archive": (("draft", "active", "paused"), "archived"),
}


def change_status(
    account: CsmAccount,
    campaign_id: str,
    action: Action,
    deps: AdminDependencies,
    now: datetime,
) -> Campaign:
    current = get_campaign(account, campaign_id, deps)
    _require_write(account)
    allowed, target = _TRANSITIONS[action]
    if current.status not in allowed:
        raise AdminError(
            409,
            "invalid_transition",
            f"cannot {action} a campaign that is {current.status}",
            {"current_status": current.status},
        )
    candidate = current.model_copy(update={"status": target})
    if action == "activate":
        candidate = candidate.model_copy(update={"activated_at": now})
        _check(candidate, account, deps, now, new_period=True)
    _saved(deps, account, action, current, candidate, now)
    return candidate


def audit_of(account: CsmAccount, campaign_id: str, deps: AdminDependencies) -> list[AuditRecord]:
    """A campaign's audit trail, oldest first, for an account that may see the campaign."""
    return audit_records(get_campaign(account, campaign_id, deps), deps)


def audit_records(campaign: Campaign, deps: AdminDependencies) -> list[AuditRecord]:
    """The audit trail of a campaign already read (and checked in scope), oldest first."""
    return sorted(deps.audit.of_campaign(campaign.campaign_id), key=lambda r: r.at)
