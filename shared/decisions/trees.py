"""Shopping experience trees: what a shopper is shown, and how their events move them.

A tree is data, never code: nodes hold experiences; transitions lead from a node to
another when all their declarative conditions hold for the event just received and the
shopper's live state (basket, session, impressions). Trees are compiled ahead of time —
per shopper by the nightly pipeline, per retailer from the live campaigns — and walked
here, one event at a time, by a pure function: ``decide``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.contract.events import EventType, Money
from shared.offers.levels import OfferPlan

TREE_SCHEMA_VERSION = 1


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductFilter(_Data):
    """Products by id, brand or category (any of them matches; empty matches nothing)."""

    product_ids: frozenset[str] = frozenset()
    brands: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    def matches(self, product_id: str, brand: str | None, category: str | None) -> bool:
        return (
            product_id in self.product_ids
            or (brand is not None and brand in self.brands)
            or (category is not None and category in self.categories)
        )


# --- the live state of a shopper ---------------------------------------------------------


class BasketLine(_Data):
    quantity: int  # adds minus removes seen so far (may dip below 0 out of order)
    unit_price: Decimal
    brand: str | None = None
    category: str | None = None


class ShopperState(_Data):
    """What the decision engine keeps per shopper between events (hot data)."""

    tree_version: str | None = None
    node_id: str | None = None
    session_id: str | None = None
    session_started_at: datetime | None = None
    basket: dict[str, BasketLine] = {}
    basket_cleared_at: datetime | None = None
    impressions: dict[str, int] = {}  # experience id -> impressions, this session
    impressions_total: dict[str, int] = {}  # experience id -> impressions, ever
    last_event_at: datetime | None = None
    recent_event_ids: tuple[str, ...] = ()  # applied already: redeliveries change nothing

    def quantity(self, products: ProductFilter) -> int:
        return sum(
            max(line.quantity, 0)
            for product_id, line in self.basket.items()
            if products.matches(product_id, line.brand, line.category)
        )

    def value(self, products: ProductFilter | None = None) -> Decimal:
        return sum(
            (
                max(line.quantity, 0) * line.unit_price
                for product_id, line in self.basket.items()
                if products is None or products.matches(product_id, line.brand, line.category)
            ),
            Decimal(0),
        )


# --- conditions -------------------------------------------------------------------------


class EventIs(_Data):
    kind: Literal["event_is"] = "event_is"
    types: frozenset[EventType]


class ProductAdded(_Data):
    """The event adds one of these products to the basket."""

    kind: Literal["product_added"] = "product_added"
    products: ProductFilter


class InBasket(_Data):
    """The basket holds at least (and below) so many units of these products."""

    kind: Literal["in_basket"] = "in_basket"
    products: ProductFilter
    at_least: int = 1
    below: int | None = None


class BasketValue(_Data):
    """The basket's value (of these products, or of all) is in ``[at_least, below)``."""

    kind: Literal["basket_value"] = "basket_value"
    products: ProductFilter | None = None
    at_least: Money | None = None
    below: Money | None = None


class PageIs(_Data):
    kind: Literal["page_is"] = "page_is"
    page_types: frozenset[str]


class SearchMatches(_Data):
    """The search's query contains one of these terms (case-insensitive)."""

    kind: Literal["search_matches"] = "search_matches"
    terms: frozenset[str]


class SessionElapsed(_Data):
    kind: Literal["session_elapsed"] = "session_elapsed"
    at_least_s: int


class Shown(_Data):
    """The experience was displayed at least ``times`` this session (``negate``: fewer)."""

    kind: Literal["shown"] = "shown"
    experience_id: str
    times: int = 1
    negate: bool = False


Condition = Annotated[
    EventIs
    | ProductAdded
    | InBasket
    | BasketValue
    | PageIs
    | SearchMatches
    | SessionElapsed
    | Shown,
    Field(discriminator="kind"),
]


# --- experiences ------------------------------------------------------------------------


class PersonalizedPromotion(_Data):
    type: Literal["personalized_promotion"] = "personalized_promotion"
    experience_id: str
    campaign_id: str | None = None
    products: ProductFilter
    generosity_pct: Annotated[Decimal, Field(gt=0, le=100)]
    threshold: Money = Decimal(0)
    # The level chosen for the shopper and the levels explored (docs/MODEL.md, "The offer
    # policy"); None: always generosity_pct at threshold, nothing explored.
    offer: OfferPlan | None = None


class GamifiedPromotion(_Data):
    """An invitation to play, given with the validated cart of an order that qualifies."""

    type: Literal["gamified_promotion"] = "gamified_promotion"
    experience_id: str
    campaign_id: str
    products: ProductFilter
    min_order_value: Money


class ProductRecommendation(_Data):
    type: Literal["product_recommendation"] = "product_recommendation"
    experience_id: str
    campaign_id: str | None = None
    product_id: str
    because_of: str | None = None


class TensionCart(_Data):
    """ "Spend N more to unlock the reward": N is recomputed as the basket changes."""

    type: Literal["tension_cart"] = "tension_cart"
    experience_id: str
    campaign_id: str | None = None
    products: ProductFilter | None = None  # None: the whole basket counts
    threshold: Money
    reward: str
    # A promotion's tension cart follows the threshold of the level the shopper is shown
    # (the same plan, the same draw as the promotion's).
    offer: OfferPlan | None = None


Experience = Annotated[
    PersonalizedPromotion | GamifiedPromotion | ProductRecommendation | TensionCart,
    Field(discriminator="type"),
]


# --- the tree ---------------------------------------------------------------------------


class Transition(_Data):
    to: str
    when: tuple[Condition, ...] = Field(min_length=1)


class Node(_Data):
    experiences: tuple[str, ...] = ()
    transitions: tuple[Transition, ...] = ()


class CampaignCreative(_Data):
    """What the shopper sees of a campaign (its ``Campaign.creative``): a title, a text and
    an image (an http(s) URL, checked when the campaign is saved)."""

    title: str
    text: str = ""
    image_url: str | None = None

    def shown(self) -> dict[str, str | None]:
        """As a shown experience's ``details["creative"]``: the three keys, always."""
        return {"title": self.title, "text": self.text, "image_url": self.image_url}


class CampaignRule(_Data):
    """What the decision checks of a campaign at the moment of deciding."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    retailer_ids: frozenset[str]
    control_share: Annotated[float, Field(ge=0, lt=1)] = 0.0
    max_per_session: int | None = None
    max_total: int | None = None
    live_since: AwareDatetime | None = Field(
        default=None,
        description="When the campaign last became active: a personal tree compiled before "
        "then does not know it, and takes it from the default tree (``live_view``)",
    )
    creative: CampaignCreative | None = Field(
        default=None,
        description="The campaign's creative, in the retailer's default tree only (recompiled "
        "within seconds of a change; personal trees, millions of them, do not repeat it): "
        "the decision takes it from the live default tree (``ExperienceTree.creatives``)",
    )


class ExperienceTree(_Data):
    schema_version: Literal[1] = 1
    tree_version: str
    retailer_id: str
    shopper_id: str | None = None  # None: the retailer's default tree
    compiled_at: AwareDatetime
    valid_until: AwareDatetime
    root: str
    nodes: dict[str, Node]
    anywhere: tuple[Transition, ...] = Field(
        default=(),
        description="Transitions from every node, tried after the node's own (except those "
        "leading to the node itself): a campaign's way in, written once, not once per node",
    )
    experiences: dict[str, Experience] = {}
    campaigns: dict[str, CampaignRule] = {}
    everywhere: tuple[str, ...] = Field(
        default=(),
        description="Experiences considered at every node, after the node's own: a game's "
        "invitation, which a qualifying order earns wherever the shopper is in the tree",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExperienceTree:
        if self.root not in self.nodes:
            raise ValueError(f"root {self.root!r} is not a node")
        for transition in self.anywhere:
            if transition.to not in self.nodes:
                raise ValueError(f"anywhere -> {transition.to}: no such node")
        for node_id, node in self.nodes.items():
            for transition in node.transitions:
                if transition.to not in self.nodes:
                    raise ValueError(f"{node_id} -> {transition.to}: no such node")
            for experience_id in node.experiences:
                if experience_id not in self.experiences:
                    raise ValueError(f"{node_id}: no experience {experience_id!r}")
        for experience_id in self.everywhere:
            if experience_id not in self.experiences:
                raise ValueError(f"everywhere: no experience {experience_id!r}")
        for experience_id, experience in self.experiences.items():
            if experience.experience_id != experience_id:
                raise ValueError(f"experience {experience_id!r} carries another id")
            if experience.campaign_id and experience.campaign_id not in self.campaigns:
                raise ValueError(f"{experience_id}: no rule for {experience.campaign_id!r}")
        return self

    def experiences_at(self, node_id: str) -> tuple[str, ...]:
        """The node's experiences, then those considered everywhere (each once)."""
        own = self.nodes[node_id].experiences
        return own + tuple(e for e in self.everywhere if e not in own)

    def transitions_from(self, node_id: str) -> Iterator[Transition]:
        """The node's own transitions, then those from anywhere (not back to itself)."""
        yield from self.nodes[node_id].transitions
        yield from (t for t in self.anywhere if t.to != node_id)

    def creatives(self) -> dict[str, CampaignCreative]:
        """Campaign id -> creative, for the campaigns of this tree that have one."""
        return {c: r.creative for c, r in self.campaigns.items() if r.creative is not None}

    def is_stale(self, moment: datetime) -> bool:
        return moment >= self.valid_until

    def serialize(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def deserialize(cls, data: bytes) -> ExperienceTree:
        return cls.model_validate_json(data)


def in_control_group(campaign_id: str, retailer_id: str, shopper_id: str, share: float) -> bool:
    """Deterministic: the same shopper is always in (or out of) a campaign's control group."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{campaign_id}#{retailer_id}#{shopper_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass(frozen=True)
class LiveView:
    """A shopper's tree as the campaigns stand now, and the campaigns it must not show."""

    tree: ExperienceTree
    stopped: frozenset[str]  # in the tree, but no longer live at the retailer


def live_view(tree: ExperienceTree, default: ExperienceTree | None) -> LiveView:
    """The shopper's tree brought up to date with the retailer's default tree, which is
    recompiled within seconds of every campaign change (docs/CAMPAIGNS.md, "Live in
    seconds"), while personal trees are compiled nightly:

    - a campaign of the personal tree that the default tree no longer holds (paused,
      archived, ended, or moved off this retailer since the night) is *stopped*: the
      decision withholds it;
    - a campaign of the default tree that became active after the personal tree was
      compiled (``live_since``), and that the personal tree does not hold, is grafted on:
      its node, experiences, rule and way in, as the default tree has them.

    Without a default tree (none compiled for the retailer yet), the tree is as it is.
    A default tree is returned as it is: it is the live set.
    """
    if default is None or tree.shopper_id is None:
        return LiveView(tree, frozenset())
    stopped = frozenset(tree.campaigns) - frozenset(default.campaigns)
    late = sorted(
        campaign_id
        for campaign_id, rule in default.campaigns.items()
        if campaign_id not in tree.campaigns
        and rule.live_since is not None
        and rule.live_since > tree.compiled_at
        and campaign_id in default.nodes
        and campaign_id not in tree.nodes
    )
    if not late:
        return LiveView(tree, stopped)
    nodes = {campaign_id: default.nodes[campaign_id] for campaign_id in late}
    grafted = tree.model_copy(
        update={
            # A new version: the shopper's place in the tree starts again at its root.
            "tree_version": f"{tree.tree_version}+"
            + hashlib.sha256("|".join(late).encode()).hexdigest()[:8],
            "nodes": {**tree.nodes, **nodes},
            "anywhere": (*tree.anywhere, *(t for t in default.anywhere if t.to in nodes)),
            "experiences": {
                **tree.experiences,
                **{e: default.experiences[e] for n in nodes.values() for e in n.experiences},
            },
            "campaigns": {**tree.campaigns, **{c: default.campaigns[c] for c in late}},
            "everywhere": (
                *tree.everywhere,
                *(e for e in default.everywhere if default.experiences[e].campaign_id in late),
            ),
        }
    )
    return LiveView(grafted, stopped)


def first_applicable(
    trees: Iterable[ExperienceTree | None], moment: datetime
) -> ExperienceTree | None:
    """The first tree that exists and is not stale (the shopper's, then the default)."""
    for tree in trees:
        if tree is not None and not tree.is_stale(moment):
            return tree
    return None
