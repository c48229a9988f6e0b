"""The levels an offer may take within its campaign's bounds, and exploration.

A personalized promotion's level is its generosity (the discount, in %) and its threshold
(the spend on the targeted products that unlocks it). The campaign bounds both: the
generosity lies in ``generosity_min_pct .. generosity_pct``; the threshold is the
campaign's, or raised by a factor (never lowered: the CSM's threshold is a floor).

Exploration keeps the measurement honest: a share ``share`` of offers is drawn uniformly
over the levels instead of the policy's choice, by a seeded hash of the shopper, the
campaign and the week (the same shopper sees the same offer all week, whatever instance
decides), and each offer records the probability it had of being shown
(``propensity``), so that the effect of every level can be estimated without bias from
the logs (inverse propensity weighting, doubly robust estimates).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

_TENTH = Decimal("0.1")
THRESHOLD_FACTORS: tuple[Decimal, ...] = (Decimal(1), Decimal("1.5"))
_NAME = re.compile(r"(\d+(?:\.\d+)?)%@(\d+(?:\.\d+)?)x")
EXPLORE_SHARE = 0.1  # the share of offers drawn uniformly over the levels, by default


class OfferLevel(BaseModel):
    """One level of an offer: its generosity (%) and its threshold factor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generosity_pct: Annotated[Decimal, Field(gt=0, le=100)]
    threshold_factor: Annotated[Decimal, Field(ge=1)] = Decimal(1)

    @property
    def name(self) -> str:
        return f"{_text(self.generosity_pct)}%@{_text(self.threshold_factor)}x"

    @classmethod
    def parse(cls, name: str) -> OfferLevel:
        """The level of a ``name`` (``10%@1.5x``), as decisions record it."""
        match = _NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"not an offer level: {name!r}")
        return cls(generosity_pct=Decimal(match[1]), threshold_factor=Decimal(match[2]))

    def threshold(self, campaign_threshold: Decimal) -> Decimal:
        return (campaign_threshold * self.threshold_factor).quantize(Decimal("0.01"))


def _text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def offer_levels(
    generosity_pct: Decimal,
    generosity_min_pct: Decimal | None,
    *,
    with_threshold: bool = True,
) -> tuple[OfferLevel, ...]:
    """The campaign's levels: its least, middle (geometric) and full generosity, each at
    the campaign's threshold and, for a campaign with a threshold, 1.5 times it."""
    high = generosity_pct
    low = min(generosity_min_pct or (high / 4), high)
    middle = Decimal(str((float(low) * float(high)) ** 0.5))
    generosities = sorted({max(g.quantize(_TENTH), _TENTH) for g in (low, middle, high)})
    factors = THRESHOLD_FACTORS if with_threshold else THRESHOLD_FACTORS[:1]
    return tuple(
        OfferLevel(generosity_pct=g, threshold_factor=f) for g in generosities for f in factors
    )


class OfferPlan(BaseModel):
    """What a tree holds for a personalized promotion: the level its policy chose for the
    shopper, the campaign's bounds (its levels are derived from them: a tree stays small),
    the share explored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str = Field(description="What chose the level: campaign, rules or learnt:<run>")
    chosen: OfferLevel
    generosity_pct: Annotated[Decimal, Field(gt=0, le=100)]  # the campaign's, at most
    generosity_min_pct: Annotated[Decimal, Field(gt=0, le=100)] | None = None
    campaign_threshold: Annotated[Decimal, Field(ge=0)] = Decimal(0)
    explore_share: Annotated[float, Field(ge=0, le=1)] = EXPLORE_SHARE

    @property
    def levels(self) -> tuple[OfferLevel, ...]:
        return offer_levels(
            self.generosity_pct,
            self.generosity_min_pct,
            with_threshold=self.campaign_threshold > 0,
        )


Level = TypeVar("Level")


@dataclass(frozen=True, slots=True)
class Offer(Generic[Level]):
    """The level shown, why (``policy`` or ``explore``) and its logged propensity."""

    level: Level
    chosen_by: str  # "policy" | "explore"
    propensity: float


def _uniform(*parts: object) -> float:
    digest = hashlib.sha256("#".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def week_of(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def explore(
    chosen: Level,
    levels: Sequence[Level],
    share: float,
    *,
    campaign_id: str,
    retailer_id: str,
    shopper_id: str,
    period: str,
) -> Offer[Level]:
    """The offer shown: ``chosen`` (the policy's level), or, for a share ``share`` of
    (shopper, campaign, period), a level drawn uniformly from ``levels``. The propensity is
    the probability of the level shown under this mixture:
    ``(1 - share) * [level == chosen] + share / len(levels)``."""
    if chosen not in levels:
        levels = (*levels, chosen)
    if share <= 0:
        return Offer(chosen, "policy", 1.0)
    key = (campaign_id, retailer_id, shopper_id, period)
    if _uniform("explore", *key) < share:
        level = levels[int(_uniform("level", *key) * len(levels)) % len(levels)]
        chosen_by = "explore"
    else:
        level, chosen_by = chosen, "policy"
    propensity = share / len(levels) + ((1 - share) if level == chosen else 0.0)
    return Offer(level, chosen_by, propensity)
