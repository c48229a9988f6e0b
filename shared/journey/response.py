"""Shoppers who respond: a seeded response model with its effects stated up front.

A replayed shopper of the Complete Journey buys what the household bought in 2017,
whatever it is shown: the true uplift of every campaign is zero (an A/A replay). The
response model makes shoppers react to what the experiences API shows them, with effects
known in advance, so that the campaign report's uplift can be checked against the truth:

- a campaign experience the tracker displays is clicked with probability ``click``;
- a shown personalized promotion makes the shopper add one more unit of a targeted
  product already in the basket, in that session, with probability ``promo_add``, or
  ``promo_add_within_reach`` when the promotion's threshold is within reach (the missing
  amount is at most ``reach_share`` of the threshold);
- a shown tension cart makes a shopper who is close (missing at most ``reach_share`` of
  the threshold) add the missing amount, in units of the basket line the shopper added
  last, with probability ``tension_fill``;
- an invitation to play (a gamified promotion's play token) is played with probability
  ``play``.

Each experience gets at most one response per session, and every draw is seeded by the
model's seed, the session and the experience: the same replay gives the same responses,
whatever the order requests are answered in. Only shown experiences can be responded to:
a held-out shopper is never shown the campaign, so is never influenced.

Entry points: ``ResponseModel.respond`` (one shown experience -> what the shopper does),
``ResponseModel.plays``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class BasketLine:
    """A line of the session's basket as the replay knows it (what it sent so far)."""

    product_id: str
    quantity: int
    unit_price: Decimal
    brand: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Addition:
    """Units the shopper adds because of an experience (``campaign_id``'s)."""

    campaign_id: str | None
    experience_id: str
    line: BasketLine  # the product added and how many units (``quantity``)

    @property
    def amount(self) -> Decimal:
        return self.line.unit_price * self.line.quantity


@dataclass(frozen=True, slots=True)
class Reaction:
    """What the shopper does about one shown experience."""

    clicked: bool
    addition: Addition | None = None


@dataclass(frozen=True, slots=True)
class ResponseModel:
    """The effects, stated up front (the defaults are the demo's)."""

    seed: int = 8451
    click: float = 0.3
    promo_add: float = 0.2
    promo_add_within_reach: float = 0.5
    tension_fill: float = 0.5
    reach_share: float = 0.3
    play: float = 0.6

    @classmethod
    def none(cls, seed: int = 8451) -> ResponseModel:
        """No response at all: the A/A replay (every true effect is zero)."""
        return cls(
            seed=seed,
            click=0.0,
            promo_add=0.0,
            promo_add_within_reach=0.0,
            tension_fill=0.0,
            play=0.0,
        )

    def stated(self) -> dict[str, float]:
        """The effects, as the report states them next to the truth."""
        return {
            "click": self.click,
            "promo_add": self.promo_add,
            "promo_add_within_reach": self.promo_add_within_reach,
            "tension_fill": self.tension_fill,
            "reach_share": self.reach_share,
            "play": self.play,
        }

    def _draw(self, *parts: object) -> random.Random:
        digest = hashlib.sha256(":".join(map(str, (self.seed, *parts))).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _within_reach(self, missing: Decimal, threshold: Decimal) -> bool:
        return Decimal(0) < missing <= threshold * Decimal(str(self.reach_share))

    def respond(
        self,
        session_id: str,
        experience: Mapping[str, Any],
        basket: Mapping[str, BasketLine],
        last_added: str | None = None,
    ) -> Reaction:
        """The shopper's reaction to ``experience`` (a ``ShownExperience`` as the
        experiences API answers it), given the session's basket so far."""
        experience_id = str(experience["experience_id"])
        campaign_id = experience.get("campaign_id")
        rng = self._draw(session_id, experience_id)
        clicked = campaign_id is not None and rng.random() < self.click
        details: Mapping[str, Any] = experience.get("details") or {}
        kind = experience.get("type")
        chance = rng.random()
        if kind == "personalized_promotion":
            covered = [p for p in details.get("in_basket", []) if p in basket]
            if not covered:
                return Reaction(clicked)
            threshold = Decimal(str(details.get("threshold", "0")))
            value = Decimal(str(details.get("basket_value", "0")))
            near = not details.get("unlocked") and self._within_reach(threshold - value, threshold)
            if chance >= (self.promo_add_within_reach if near else self.promo_add):
                return Reaction(clicked)
            chosen = basket[sorted(covered)[rng.randrange(len(covered))]]
            added = BasketLine(
                chosen.product_id, 1, chosen.unit_price, chosen.brand, chosen.category
            )
            return Reaction(clicked, Addition(campaign_id, experience_id, added))
        if kind == "tension_cart":
            threshold = Decimal(str(details.get("threshold", "0")))
            missing = Decimal(str(details.get("missing", "0")))
            line = basket.get(last_added or "")
            if (
                details.get("unlocked")
                or line is None
                or line.unit_price <= 0
                or not self._within_reach(missing, threshold)
                or chance >= self.tension_fill
            ):
                return Reaction(clicked)
            units = math.ceil(missing / line.unit_price)
            added = BasketLine(line.product_id, units, line.unit_price, line.brand, line.category)
            return Reaction(clicked, Addition(campaign_id, experience_id, added))
        return Reaction(clicked)

    def plays(self, session_id: str, experience: Mapping[str, Any]) -> bool:
        """Whether the shopper plays an invitation (a gamified promotion's play token)."""
        if experience.get("type") != "gamified_promotion":
            return False
        rng = self._draw(session_id, experience["experience_id"], "play")
        return rng.random() < self.play
