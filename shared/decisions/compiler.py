"""Compiles campaigns into experience trees.

Each retailer gets a default tree from its live campaigns: the root leads, when a
shopper adds one of a campaign's products, to that campaign's node, which holds the
campaign's experience (and, for a threshold, the tension cart towards it); removing the
last of those products leads back to the root, adding another campaign's product leads to
that campaign's node.

The nightly pipeline compiles a personal tree per scored shopper from the same building
blocks (``compile_personal_tree``), with the rules of docs/NIGHTLY.md: recommendations
from the shopper's own history (the ranker's top products) and from complementarity
(adding pasta leads to a node recommending the sauce they buy), a whole-basket tension
cart set above their usual basket from their spend distribution, and each campaign's
generosity lowered, never raised, for a shopper who buys its products anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from shared.campaigns.model import Campaign
from shared.contract.events import EventType
from shared.decisions.trees import (
    CampaignCreative,
    CampaignRule,
    EventIs,
    Experience,
    ExperienceTree,
    GamifiedPromotion,
    InBasket,
    Node,
    PersonalizedPromotion,
    ProductAdded,
    ProductFilter,
    ProductRecommendation,
    TensionCart,
    Transition,
)
from shared.offers.levels import OfferLevel, OfferPlan

DEFAULT_VALIDITY = timedelta(days=2)
ROOT = "root"


def products_of(campaign: Campaign) -> ProductFilter:
    return ProductFilter(
        product_ids=frozenset(campaign.targeted_product_ids),
        brands=frozenset(campaign.targeted_brands),
        categories=frozenset(campaign.targeted_categories),
    )


def creative_of(campaign: Campaign) -> CampaignCreative | None:
    creative = campaign.creative
    if creative is None:
        return None
    return CampaignCreative(title=creative.title, text=creative.text, image_url=creative.image_url)


def rule_of(campaign: Campaign, *, with_creative: bool = False) -> CampaignRule:
    """The campaign's rule; ``with_creative``: its creative too (the default tree only)."""
    return CampaignRule(
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        retailer_ids=frozenset(campaign.retailer_ids),
        control_share=campaign.control_share,
        max_per_session=campaign.max_per_session,
        live_since=campaign.activated_at,
        creative=creative_of(campaign) if with_creative else None,
    )


def experiences_of(campaign: Campaign, products: ProductFilter | None = None) -> list[Experience]:
    """The campaign's experiences, on its products or on ``products`` (a personal tree's
    selection of them)."""
    recommended = (
        sorted(products.product_ids) if products is not None else campaign.targeted_product_ids
    )
    products = products or products_of(campaign)
    cid = campaign.campaign_id
    tension = TensionCart(
        experience_id=f"{cid}:tension",
        campaign_id=cid,
        products=products,
        threshold=campaign.threshold,
        reward=campaign.reward or f"{campaign.name}: your reward",
    )
    match campaign.experience_type:
        case "personalized_promotion":
            plan = offer_plan(
                campaign, OfferLevel(generosity_pct=campaign.generosity_pct), "campaign"
            )
            tension = tension.model_copy(update={"offer": plan})
            found: list[Experience] = [
                PersonalizedPromotion(
                    experience_id=f"{cid}:promotion",
                    campaign_id=cid,
                    products=products,
                    generosity_pct=campaign.generosity_pct,
                    threshold=campaign.threshold,
                    offer=plan,
                )
            ]
        case "gamified_promotion":
            found = [
                GamifiedPromotion(
                    experience_id=f"{cid}:play",
                    campaign_id=cid,
                    products=products,
                    min_order_value=campaign.threshold,
                )
            ]
        case "tension_cart":
            found = []
        case "product_recommendation":
            found = [
                ProductRecommendation(
                    experience_id=f"{cid}:recommend:{product_id}",
                    campaign_id=cid,
                    product_id=product_id,
                )
                for product_id in recommended[:3]
            ]
    if campaign.threshold > 0 or campaign.experience_type == "tension_cart":
        found.append(tension)
    return found


def offer_plan(campaign: Campaign, chosen: OfferLevel, policy: str) -> OfferPlan:
    """The promotion's offer: ``chosen`` (by ``policy``), and the campaign's levels
    explored for a share ``campaign.explore_share`` of shoppers (docs/MODEL.md)."""
    return OfferPlan(
        policy=policy,
        chosen=chosen,
        generosity_pct=campaign.generosity_pct,
        generosity_min_pct=campaign.generosity_min_pct,
        campaign_threshold=campaign.threshold,
        explore_share=campaign.explore_share,
    )


def live_campaigns(
    retailer_id: str, campaigns: Iterable[Campaign], now: datetime
) -> list[Campaign]:
    return sorted(
        (
            c
            for c in campaigns
            if c.status == "active" and retailer_id in c.retailer_ids and c.ends_at > now
        ),
        key=lambda c: c.campaign_id,
    )


def _leave_when_gone(products: ProductFilter) -> Transition:
    """Back to the root once the last of these products left the basket."""
    return Transition(
        to=ROOT,
        when=(
            EventIs(types=frozenset({EventType.PRODUCT_REMOVED_FROM_BASKET})),
            InBasket(products=products, at_least=0, below=1),
        ),
    )


def invitations(experiences: Mapping[str, Experience]) -> tuple[str, ...]:
    """The games' invitations: considered at every node (``ExperienceTree.everywhere``),
    since a qualifying order earns one wherever the shopper is in the tree."""
    return tuple(sorted(e for e, x in experiences.items() if isinstance(x, GamifiedPromotion)))


def _fingerprint(parts: Iterable[str]) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def compile_default_tree(
    retailer_id: str,
    campaigns: Iterable[Campaign],
    now: datetime,
    validity: timedelta = DEFAULT_VALIDITY,
) -> ExperienceTree:
    live = live_campaigns(retailer_id, campaigns, now)
    enter = [
        Transition(to=c.campaign_id, when=(ProductAdded(products=products_of(c)),)) for c in live
    ]
    # Every node leads into any campaign whose product was just added: those transitions
    # are written once, ``anywhere``, not repeated in each node (a campaign targeting
    # thousands of products would otherwise weigh its list once per node).
    nodes = {ROOT: Node()}
    experiences: dict[str, Experience] = {}
    for campaign in live:
        own = experiences_of(campaign)
        experiences |= {e.experience_id: e for e in own}
        nodes[campaign.campaign_id] = Node(
            experiences=tuple(e.experience_id for e in own),
            transitions=(_leave_when_gone(products_of(campaign)),),
        )
    fingerprint = _fingerprint(c.model_dump_json() for c in live)
    return ExperienceTree(
        tree_version=f"default-{fingerprint}",
        retailer_id=retailer_id,
        compiled_at=now,
        valid_until=now + validity,
        root=ROOT,
        nodes=nodes,
        anywhere=tuple(enter),
        experiences=experiences,
        # The creatives here only: the decision shows those of the live default tree, also
        # on personal trees (recompiled nightly, they would show last night's creative).
        campaigns={c.campaign_id: rule_of(c, with_creative=True) for c in live},
        everywhere=invitations(experiences),
    )


# --- personal trees (the nightly pipeline) ------------------------------------------------


@dataclass(frozen=True)
class ScoredProduct:
    """A row of ``shopper_product_scores``: what the ranker expects in the next basket."""

    product_id: str
    rank: int  # 1 = the most likely
    score: float


@dataclass(frozen=True)
class Complement:
    """A row of ``product_complements``: bought with ``product_id`` more than by chance."""

    product_id: str
    complement_id: str
    lift: float
    support: float


@dataclass(frozen=True)
class SpendProfile:
    """A row of ``shopper_spend_profiles``: the shopper's basket value distribution."""

    baskets: int
    value_p25: Decimal
    value_p50: Decimal
    value_p75: Decimal
    value_p90: Decimal
    visits_per_week: float


@dataclass(frozen=True)
class PersonalRules:
    """The econometric rules turning predictions into tree parameters (docs/NIGHTLY.md)."""

    history_recommendations: int = 3  # the ranker's top products shown at the root
    new_recommendations: int = 2  # products new to the shopper shown at the root
    complement_triggers: int = 6  # the shopper's top products that lead to a complement
    min_lift: float = 1.2
    min_baskets_for_threshold: int = 3
    threshold_uplift: Decimal = Decimal("1.15")  # at least 15% above the median basket
    basket_reward: str = "free delivery on this order"
    habitual_rank: int = 10  # a targeted product this high in the ranking: bought anyway
    campaign_products: int = 20  # a campaign's products kept in a personal tree, at most
    habitual_generosity_share: Decimal = Decimal("0.5")
    validity: timedelta = DEFAULT_VALIDITY


def basket_threshold(profile: SpendProfile | None, rules: PersonalRules) -> Decimal | None:
    """Above the usual basket: the 75th percentile, at least ``threshold_uplift`` x the
    median, no higher than the 90th percentile when that is already above the median
    enough; rounded up to a whole unit. ``None`` without enough baskets to know."""
    if profile is None or profile.baskets < rules.min_baskets_for_threshold:
        return None
    if profile.value_p50 <= 0:
        return None
    floor = profile.value_p50 * rules.threshold_uplift
    target = max(profile.value_p75, floor)
    if profile.value_p90 >= floor:
        target = min(target, profile.value_p90)
    return target.to_integral_value(rounding=ROUND_CEILING)


def personal_generosity(
    campaign: Campaign, scores: Sequence[ScoredProduct], rules: PersonalRules
) -> Decimal:
    """The campaign's generosity, or a share of it for a shopper the ranker expects to buy
    its products anyway (little incremental value to pay for); never above the campaign's."""
    targeted = set(campaign.targeted_product_ids)
    habitual = any(s.product_id in targeted and s.rank <= rules.habitual_rank for s in scores)
    if not habitual:
        return campaign.generosity_pct
    lowered = (campaign.generosity_pct * rules.habitual_generosity_share).quantize(Decimal("0.1"))
    floor = campaign.generosity_min_pct or Decimal("0.1")
    return max(min(lowered, campaign.generosity_pct), floor)


def campaign_selection(
    campaign: Campaign, shopper_products: Sequence[str], rules: PersonalRules
) -> ProductFilter | None:
    """The campaign's products for this shopper: those of its targeted products the shopper
    is expected to buy or is recommended (best first, at most ``campaign_products``); a
    campaign that targets brands or categories only keeps them. ``None``: nothing for them."""
    if not campaign.targeted_product_ids:
        return ProductFilter(
            brands=frozenset(campaign.targeted_brands),
            categories=frozenset(campaign.targeted_categories),
        )
    targeted = set(campaign.targeted_product_ids)
    chosen = [p for p in dict.fromkeys(shopper_products) if p in targeted]
    if not chosen:
        return None
    return ProductFilter(product_ids=frozenset(chosen[: rules.campaign_products]))


def best_complements(
    scores: Sequence[ScoredProduct],
    complements: Mapping[str, Sequence[Complement]],
    rules: PersonalRules,
) -> list[tuple[str, str]]:
    """(trigger, complement) pairs: for each of the shopper's top products, the complement
    they buy themselves (in their ranking) if any, else the one of highest lift."""
    ranked = sorted(scores, key=lambda s: s.rank)
    own = {s.product_id: s.rank for s in ranked}
    pairs: list[tuple[str, str]] = []
    for scored in ranked[: rules.complement_triggers]:
        candidates = [
            c
            for c in complements.get(scored.product_id, ())
            if c.lift >= rules.min_lift and c.complement_id != scored.product_id
        ]
        if not candidates:
            continue
        best = min(
            candidates,
            key=lambda c: (own.get(c.complement_id, 10**9), -c.lift, -c.support, c.complement_id),
        )
        pairs.append((scored.product_id, best.complement_id))
    return pairs


def compile_personal_tree(
    retailer_id: str,
    shopper_id: str,
    *,
    scores: Sequence[ScoredProduct],
    complements: Mapping[str, Sequence[Complement]],
    profile: SpendProfile | None,
    campaigns: Iterable[Campaign],
    now: datetime,
    run_id: str,
    rules: PersonalRules = PersonalRules(),
    new_products: Sequence[str] = (),
    offers: Mapping[str, OfferLevel] | None = None,
    offer_policy: str = "rules",
) -> ExperienceTree:
    """The shopper's tree: a node per campaign for them (its products they are expected to
    buy or are recommended, generosity personalized), the root with their usual products
    and a tension cart above their usual basket, and one node per complement trigger
    (adding pasta: recommend the sauce). ``offers``: a promotion's level chosen by the
    learnt ``offer_policy`` (docs/MODEL.md); a promotion without one follows the rules."""
    pairs = best_complements(scores, complements, rules)
    usual_ids = [s.product_id for s in sorted(scores, key=lambda s: s.rank)]
    shown = set(usual_ids[: rules.history_recommendations])
    discoveries = [p for p in dict.fromkeys(new_products) if p not in shown][
        : rules.new_recommendations
    ]
    shopper_products = [
        *usual_ids,
        *(complement for _, complement in pairs),
        *discoveries,
    ]
    selected = {
        c.campaign_id: chosen
        for c in live_campaigns(retailer_id, campaigns, now)
        if (chosen := campaign_selection(c, shopper_products, rules)) is not None
    }
    live = [c for c in live_campaigns(retailer_id, campaigns, now) if c.campaign_id in selected]
    threshold = basket_threshold(profile, rules)
    experiences: dict[str, Experience] = {}
    basket_nudge: tuple[str, ...] = ()
    if threshold is not None:
        nudge = TensionCart(
            experience_id="basket:tension",
            threshold=threshold,
            reward=rules.basket_reward,
        )
        experiences[nudge.experience_id] = nudge
        basket_nudge = (nudge.experience_id,)

    usual = [
        ProductRecommendation(experience_id=f"usual:{product}", product_id=product)
        for product in usual_ids[: rules.history_recommendations]
    ]
    experiences |= {e.experience_id: e for e in usual}
    new = [
        ProductRecommendation(experience_id=f"new:{product}", product_id=product)
        for product in discoveries
    ]
    experiences |= {e.experience_id: e for e in new}

    enter_campaign = [
        Transition(to=c.campaign_id, when=(ProductAdded(products=selected[c.campaign_id]),))
        for c in live
    ]
    enter_complement = [
        Transition(
            to=f"after:{trigger}",
            when=(ProductAdded(products=ProductFilter(product_ids=frozenset({trigger}))),),
        )
        for trigger, _ in pairs
    ]
    enter = [*enter_campaign, *enter_complement]  # a campaign first: one transition per event
    nodes = {
        ROOT: Node(
            experiences=(
                *(e.experience_id for e in usual),
                *(e.experience_id for e in new),
                *basket_nudge,
            ),
        )
    }
    for campaign in live:
        learnt = (offers or {}).get(campaign.campaign_id)
        if learnt is not None:
            offer = offer_plan(campaign, learnt, offer_policy)
        else:
            generosity = personal_generosity(campaign, scores, rules)
            offer = offer_plan(campaign, OfferLevel(generosity_pct=generosity), "rules")
        level = offer.chosen
        own = [
            e.model_copy(
                update={
                    "generosity_pct": level.generosity_pct,
                    "threshold": level.threshold(campaign.threshold),
                    "offer": offer,
                }
            )
            if isinstance(e, PersonalizedPromotion)
            else e.model_copy(
                update={"threshold": level.threshold(campaign.threshold), "offer": offer}
            )
            if isinstance(e, TensionCart) and e.offer is not None
            else e
            for e in experiences_of(campaign, selected[campaign.campaign_id])
        ]
        experiences |= {e.experience_id: e for e in own}
        nodes[campaign.campaign_id] = Node(
            experiences=tuple(e.experience_id for e in own),
            transitions=(_leave_when_gone(selected[campaign.campaign_id]),),
        )
    for trigger, complement in pairs:
        recommendation = ProductRecommendation(
            experience_id=f"complement:{complement}",
            product_id=complement,
            because_of=trigger,
        )
        experiences[recommendation.experience_id] = recommendation
        node_id = f"after:{trigger}"
        nodes[node_id] = Node(
            experiences=(recommendation.experience_id, *basket_nudge),
            transitions=(_leave_when_gone(ProductFilter(product_ids=frozenset({trigger}))),),
        )
    fingerprint = _fingerprint(
        [
            *(c.model_dump_json() for c in live),
            *(f"{s.product_id}:{s.rank}" for s in scores),
            *(f"{t}>{c}" for t, c in pairs),
            *(f"new:{p}" for p in discoveries),
            str(threshold),
            *(f"offer:{c}:{v.name}" for c, v in sorted((offers or {}).items())),
        ]
    )
    return ExperienceTree(
        tree_version=f"{run_id}:{fingerprint}",
        retailer_id=retailer_id,
        shopper_id=shopper_id,
        compiled_at=now,
        valid_until=now + rules.validity,
        root=ROOT,
        nodes=nodes,
        anywhere=tuple(enter),
        experiences=experiences,
        campaigns={c.campaign_id: rule_of(c) for c in live},
        everywhere=invitations(experiences),
    )
