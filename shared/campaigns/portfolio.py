"""A CSM's portfolio: the campaign list's filters, sorting and paging, pacing, alerts.

Pure logic over campaigns and their saved figures (``stats.CampaignStats``): the pages
(``back_office``) render what these functions return; the filter state lives in the URL's
query string (``ListQuery``), so that a filtered list can be shared and the back button
works.

Pacing follows the ads managers' convention: the share of the budget spent set against the
share of the period elapsed; a campaign whose spend, extrapolated at its rate so far,
exceeds its budget before its end is "on track to run out".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.campaigns.model import Campaign
from shared.campaigns.stats import CampaignStats

SortKey = Literal[
    "name", "status", "starts_at", "ends_at", "spent", "pacing", "exposed", "held_out", "uplift"
]
PER_PAGE = (25, 50, 100)
ENDING_SOON = timedelta(days=3)
NO_EXPOSURE = timedelta(hours=24)
# Pacing is judged once this share of the period has passed (earlier, one day's spend
# extrapolated over the whole period says little).
PACING_FROM = 0.05


class ListQuery(BaseModel):
    """The list's state, as the URL's query string holds it (blank fields: no filter)."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    q: str = Field(default="", max_length=200, description="In the name, id or brand")
    retailer: str = Field(default="", max_length=200)
    status: Literal["", "draft", "active", "paused", "archived", "live"] = ""
    experience: Literal[
        "", "personalized_promotion", "gamified_promotion", "product_recommendation", "tension_cart"
    ] = ""
    brand: str = Field(default="", max_length=200)
    period_from: date | None = Field(default=None, description="Running on or after this day")
    period_to: date | None = Field(default=None, description="Running on or before this day")
    sort: SortKey = "starts_at"
    order: Literal["asc", "desc"] = "desc"
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = 50

    @field_validator("period_from", "period_to", mode="before")
    @classmethod
    def _blank_date(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("per_page")
    @classmethod
    def _per_page(cls, value: int) -> int:
        if value not in PER_PAGE:
            raise ValueError(f"one of {', '.join(map(str, PER_PAGE))}")
        return value

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> tuple[ListQuery, list[str]]:
        """The query of these URL parameters; a bad value is dropped (its default used)
        and named in the errors, so that a mistyped link still lists something."""
        values = {k: v for k, v in params.items() if k in cls.model_fields}
        errors: list[str] = []
        while True:
            try:
                return cls.model_validate(values), errors
            except ValidationError as exc:
                for error in exc.errors():
                    name = str(error["loc"][0]) if error["loc"] else "query"
                    errors.append(f"{name}: {error['msg']} (ignored)")
                    values.pop(name, None)
                if not values:
                    return cls(), errors

    def url_params(self, **changes: Any) -> str:
        """The query string of this state with ``changes`` (defaults left out)."""
        state = self.model_copy(update=changes)
        defaults = ListQuery()
        pairs = []
        for name in type(self).model_fields:
            value = getattr(state, name)
            if value == getattr(defaults, name):
                continue
            pairs.append((name, value.isoformat() if isinstance(value, date) else str(value)))
        return urlencode(pairs)


@dataclass(frozen=True)
class Pacing:
    spent: float
    budget: float | None
    spent_share: float | None  # of the budget
    elapsed_share: float  # of the period
    projected: float | None  # the spend at the end, at the rate so far
    verdict: Literal["no_budget", "not_started", "exhausted", "too_fast", "on_track", "ended"]

    @property
    def ratio(self) -> float | None:
        """Spent share over elapsed share: 1 is on pace, above 1 too fast."""
        if self.spent_share is None or self.elapsed_share <= 0:
            return None
        return self.spent_share / self.elapsed_share


def pacing(campaign: Campaign, stats: CampaignStats | None, now: datetime) -> Pacing:
    spent = stats.spent if stats else 0.0
    budget = float(campaign.budget) if campaign.budget is not None else None
    total = (campaign.ends_at - campaign.starts_at).total_seconds()
    elapsed = min(max((now - campaign.starts_at).total_seconds() / total, 0.0), 1.0)
    share = spent / budget if budget else None
    projected = spent / elapsed if elapsed > 0 else None

    def verdict() -> Any:
        if budget is None:
            return "no_budget"
        if campaign.budget_exhausted or (share is not None and share >= 1):
            return "exhausted"
        if elapsed <= 0:
            return "not_started"
        if elapsed >= 1:
            return "ended"
        if elapsed >= PACING_FROM and projected is not None and projected > budget:
            return "too_fast"
        return "on_track"

    return Pacing(spent, budget, share, elapsed, projected, verdict())


AlertKind = Literal[
    "budget_exhausted", "budget_runs_out", "no_exposure", "uplift_negative", "ending_soon"
]


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: AlertKind
    campaign_id: str
    campaign_name: str
    message: str
    severity: Literal["high", "medium", "low"]


def alerts(campaign: Campaign, stats: CampaignStats | None, now: datetime) -> list[Alert]:
    """What needs a CSM's eye on this campaign now (archived and drafts: nothing)."""
    if campaign.status in ("archived", "draft"):
        return []
    found: list[tuple[AlertKind, str, Any]] = []
    pace = pacing(campaign, stats, now)
    running = campaign.runs_at(now)
    if pace.verdict == "exhausted" and campaign.ends_at > now:
        found.append(("budget_exhausted", f"budget exhausted: {pace.spent:,.2f} spent", "high"))
    elif pace.verdict == "too_fast" and pace.projected is not None and pace.budget:
        # When the budget runs out at the rate so far.
        rate = pace.spent / max((now - campaign.starts_at).total_seconds(), 1.0)
        left = (pace.budget - pace.spent) / rate if rate > 0 else math.inf
        out = now + timedelta(seconds=left)
        found.append(
            (
                "budget_runs_out",
                f"on track to run out of budget on {out:%Y-%m-%d}, before its end "
                f"({campaign.ends_at:%Y-%m-%d}): {pace.spent_share or 0:.0%} spent after "
                f"{pace.elapsed_share:.0%} of the period",
                "high",
            )
        )
    if (
        campaign.status == "active"
        and running
        and now - campaign.starts_at >= NO_EXPOSURE
        and (stats is None or stats.shown_recently == 0)
    ):
        found.append(("no_exposure", "active, but shown to no shopper in 24 hours", "high"))
    if stats is not None and stats.uplift_high is not None and stats.uplift_high < 0:
        found.append(
            (
                "uplift_negative",
                f"uplift in targeted sales below zero: {stats.uplift:+.2f} per shopper "
                f"(95% interval {stats.uplift_low:+.2f} to {stats.uplift_high:+.2f})",
                "medium",
            )
        )
    if running and campaign.ends_at - now <= ENDING_SOON:
        found.append(("ending_soon", f"ends {campaign.ends_at:%Y-%m-%d %H:%M} UTC", "low"))
    return [
        Alert(
            kind=kind,
            campaign_id=campaign.campaign_id,
            campaign_name=campaign.name,
            message=message,
            severity=severity,
        )
        for kind, message, severity in found
    ]


def _matches(campaign: Campaign, query: ListQuery, now: datetime) -> bool:
    if query.q:
        needle = query.q.casefold()
        haystack = (campaign.name, campaign.campaign_id, campaign.brand or "")
        if not any(needle in text.casefold() for text in haystack):
            return False
    if query.retailer and query.retailer not in campaign.retailer_ids:
        return False
    if query.status == "live":
        if campaign.status != "active" or not campaign.runs_at(now):
            return False
    elif query.status and campaign.status != query.status:
        return False
    if query.experience and campaign.experience_type != query.experience:
        return False
    if query.brand and (campaign.brand or "").casefold() != query.brand.casefold():
        return False
    if query.period_from and campaign.ends_at.date() < query.period_from:
        return False
    return not (query.period_to and campaign.starts_at.date() > query.period_to)


def _sort_key(
    key: SortKey, stats: Mapping[str, CampaignStats], now: datetime
) -> Callable[[Campaign], tuple[Any, ...]]:
    def of(campaign: Campaign) -> tuple[Any, ...]:
        s = stats.get(campaign.campaign_id)
        value: Any
        if key == "name":
            value = campaign.name.casefold()
        elif key in ("status", "starts_at", "ends_at"):
            value = getattr(campaign, key)
        elif key == "pacing":
            value = pacing(campaign, s, now).ratio
        elif key == "uplift":
            value = s.uplift if s else None
        else:
            value = getattr(s, key) if s else None
        # Unknown figures last in either order; the id breaks ties (a stable page order).
        return (value is None, value if value is not None else 0, campaign.campaign_id)

    return of


@dataclass(frozen=True)
class Row:
    campaign: Campaign
    stats: CampaignStats | None
    pacing: Pacing


@dataclass(frozen=True)
class ListPage:
    rows: list[Row]
    total: int
    page: int
    pages: int
    retailers: list[str]  # the filters' choices, from every campaign the account sees
    brands: list[str]


def select(
    campaigns: Sequence[Campaign],
    stats: Mapping[str, CampaignStats],
    query: ListQuery,
    now: datetime,
) -> ListPage:
    """The page of campaigns this query asks for, filtered, sorted and cut."""
    chosen = [c for c in campaigns if _matches(c, query, now)]
    key = _sort_key(query.sort, stats, now)
    known = sorted((c for c in chosen if not key(c)[0]), key=key, reverse=query.order == "desc")
    unknown = sorted((c for c in chosen if key(c)[0]), key=lambda c: c.campaign_id)
    ordered = known + unknown
    pages = max(1, math.ceil(len(ordered) / query.per_page))
    page = min(query.page, pages)
    cut = ordered[(page - 1) * query.per_page : page * query.per_page]
    return ListPage(
        rows=[
            Row(c, stats.get(c.campaign_id), pacing(c, stats.get(c.campaign_id), now)) for c in cut
        ],
        total=len(ordered),
        page=page,
        pages=pages,
        retailers=sorted({r for c in campaigns for r in c.retailer_ids}),
        brands=sorted({c.brand for c in campaigns if c.brand}, key=lambda b: (b.casefold(), b)),
    )


def portfolio_alerts(
    campaigns: Sequence[Campaign], stats: Mapping[str, CampaignStats], now: datetime
) -> list[Alert]:
    """Every alert of these campaigns, the most severe first."""
    rank = {"high": 0, "medium": 1, "low": 2}
    found = [a for c in campaigns for a in alerts(c, stats.get(c.campaign_id), now)]
    return sorted(found, key=lambda a: (rank[a.severity], a.kind, a.campaign_name.casefold()))
