"""Compiles campaigns into experience trees.

Until the nightly pipeline compiles a tree per shopper, each retailer gets a default tree
from its live campaigns: the root leads, when a shopper adds one of a campaign's
products, to that campaign's node, which holds the campaign's experience (and, for a
threshold, the tension cart towards it); removing the last of those products leads back
to the root, adding another campaign's product leads to that campaign's node. The
nightly pipeline reuses the same building blocks for personal trees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from shared.campaigns import Campaign
from shared.events import EventType
from shared.trees import (
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

DEFAULT_VALIDITY = timedelta(days=2)
ROOT = "root"


def products_of(campaign: Campaign) -> ProductFilter:
    return ProductFilter(
        product_ids=frozenset(campaign.targeted_product_ids),
        brands=frozenset(campaign.targeted_brands),
    )


def rule_of(campaign: Campaign) -> CampaignRule:
    return CampaignRule(
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        retailer_ids=frozenset(campaign.retailer_ids),
        control_share=campaign.control_share,
        max_per_session=campaign.max_per_session,
    )


def experiences_of(campaign: Campaign) -> list[Experience]:
    products = products_of(campaign)
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
            found: list[Experience] = [
                PersonalizedPromotion(
                    experience_id=f"{cid}:promotion",
                    campaign_id=cid,
                    products=products,
                    generosity_pct=campaign.generosity_pct,
                    threshold=campaign.threshold,
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
                for product_id in campaign.targeted_product_ids[:3]
            ]
    if campaign.threshold > 0 or campaign.experience_type == "tension_cart":
        found.append(tension)
    return found


def compile_default_tree(
    retailer_id: str,
    campaigns: Iterable[Campaign],
    now: datetime,
    validity: timedelta = DEFAULT_VALIDITY,
) -> ExperienceTree:
    live = sorted(
        (
            c
            for c in campaigns
            if c.status == "active" and retailer_id in c.retailer_ids and c.ends_at > now
        ),
        key=lambda c: c.campaign_id,
    )
    enter = [
        Transition(to=c.campaign_id, when=(ProductAdded(products=products_of(c)),)) for c in live
    ]
    nodes = {ROOT: Node(transitions=tuple(enter))}
    experiences: dict[str, Experience] = {}
    for campaign in live:
        own = experiences_of(campaign)
        experiences |= {e.experience_id: e for e in own}
        leave = Transition(
            to=ROOT,
            when=(
                EventIs(types=frozenset({EventType.PRODUCT_REMOVED_FROM_BASKET})),
                InBasket(products=products_of(campaign), at_least=0, below=1),
            ),
        )
        others = [t for t in enter if t.to != campaign.campaign_id]
        nodes[campaign.campaign_id] = Node(
            experiences=tuple(e.experience_id for e in own), transitions=(leave, *others)
        )
    fingerprint = hashlib.sha256("|".join(c.model_dump_json() for c in live).encode()).hexdigest()[
        :12
    ]
    return ExperienceTree(
        tree_version=f"default-{fingerprint}",
        retailer_id=retailer_id,
        compiled_at=now,
        valid_until=now + validity,
        root=ROOT,
        nodes=nodes,
        experiences=experiences,
        campaigns={c.campaign_id: rule_of(c) for c in live},
    )
