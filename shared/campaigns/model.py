"""Campaigns: what a brand runs on retailers' sites, and where they are kept.

The model holds what the decision engine and the reports need to know of a campaign:
who runs it where, when, on which products and brands, with which kind of experience.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.contract.events import IDENTIFIER
from shared.offers.levels import EXPLORE_SHARE

ExperienceType = Literal[
    "personalized_promotion", "gamified_promotion", "product_recommendation", "tension_cart"
]
CampaignStatus = Literal["draft", "active", "paused", "archived"]


class Creative(BaseModel):
    """What the shopper sees of the campaign: a title, a text and an image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=120)
    text: str = Field(default="", max_length=1000)
    image_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2000)


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: str = Field(pattern=IDENTIFIER)
    name: str = Field(min_length=1, max_length=200)
    brand: str | None = Field(
        default=None, max_length=200, description="The brand that runs (pays for) the campaign"
    )
    retailer_ids: list[str] = Field(min_length=1)
    experience_type: ExperienceType
    status: CampaignStatus
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    targeted_product_ids: list[str] = Field(default_factory=list)
    targeted_brands: list[str] = Field(default_factory=list)
    targeted_categories: list[str] = Field(
        default_factory=list, description="Products of these categories are targeted too"
    )
    generosity_pct: Decimal = Field(
        default=Decimal(10), gt=0, le=100, description="The discount offered, at most"
    )
    generosity_min_pct: Decimal | None = Field(
        default=None,
        gt=0,
        le=100,
        description="The least discount a personal tree may lower it to (None: 0.1)",
    )
    threshold: Decimal = Field(
        default=Decimal(0), ge=0, description="Spend on the targeted products that unlocks it"
    )
    reward: str | None = Field(default=None, max_length=200)
    budget: Decimal | None = Field(
        default=None, ge=0, description="What the campaign may spend (wins paid, in currency)"
    )
    win_probability: float | None = Field(
        default=None, gt=0, le=1, description="Gamified promotion: the odds of one play winning"
    )
    prize_value: Decimal | None = Field(
        default=None, gt=0, description="Gamified promotion: what one win pays, charged to budget"
    )
    control_share: float = Field(default=0.1, ge=0, lt=1)
    explore_share: float = Field(
        default=EXPLORE_SHARE,
        ge=0,
        le=0.5,
        description="Personalized promotion: the share of offers shown at a level drawn "
        "uniformly within the bounds, to learn what each level changes (0: none)",
    )
    max_per_session: int | None = Field(default=3, ge=1)
    allow_unseen_targets: bool = Field(
        default=False,
        description="A launch: targeted products, brands or categories that no read model "
        "has seen at the retailers yet are accepted (by default they are refused, with the "
        "nearest known names suggested: a misspelt target would match nothing)",
    )
    budget_exhausted: bool = Field(
        default=False, description="Set by the payout ledger: the decision stops showing it"
    )
    activated_at: AwareDatetime | None = Field(
        default=None,
        description="When it last became active (set by the status actions): the trees "
        "compiled before then do not hold it",
    )
    origin: str | None = Field(default=None, description="Where it comes from, if imported")
    creative: Creative | None = None

    @model_validator(mode="after")
    def _period(self) -> Campaign:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if not (self.targeted_product_ids or self.targeted_brands or self.targeted_categories):
            raise ValueError("a campaign targets products, brands or categories")
        if self.generosity_min_pct is not None and self.generosity_min_pct > self.generosity_pct:
            raise ValueError("generosity_min_pct must not exceed generosity_pct")
        if self.experience_type == "gamified_promotion" and (
            (self.win_probability is None) != (self.prize_value is None)
        ):
            raise ValueError("a gamified promotion sets both win_probability and prize_value")
        return self

    def runs_at(self, moment: datetime) -> bool:
        return self.starts_at <= moment < self.ends_at


CampaignAction = Literal["create", "update", "activate", "pause", "archive"]


class CampaignChange(BaseModel):
    """A change to a campaign, published on ``campaign-changes`` once it is saved: the
    retailers whose default trees it touches (those before and after the change)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: str = Field(pattern=IDENTIFIER)
    action: CampaignAction
    retailer_ids: list[str] = Field(min_length=1)
    status: CampaignStatus
    changed_at: AwareDatetime


class CampaignChanges(Protocol):
    def published(self, change: CampaignChange) -> None: ...


class CampaignStore(Protocol):
    def put(self, campaign: Campaign) -> None: ...

    def get(self, campaign_id: str) -> Campaign | None: ...

    def all(self) -> list[Campaign]: ...

    def competing(self, candidate: Campaign) -> list[Campaign]:
        """At least every campaign sharing a retailer with ``candidate``."""
        ...
