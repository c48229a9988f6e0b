"""The decision: one shopper event moves the shopper's live state and their place in the
tree, and says which experiences to show now, which are held out, and why.

Pure: ``decide(tree, state, retailer_id, event, ...)`` returns the new state and the
decision; storage and transport are the caller's. A redelivered event (its id among the
state's recent ones) changes nothing and decides nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contract.events import (
    CartValidatedEvent,
    EventType,
    ExperienceDisplayedEvent,
    PageViewedEvent,
    ProductAddedToBasketEvent,
    ProductRemovedFromBasketEvent,
    SearchPerformedEvent,
    ShopperEvent,
)
from shared.decisions.play_tokens import VALIDITY, PlayGrant, sign
from shared.decisions.trees import (
    BasketLine,
    BasketValue,
    CampaignCreative,
    Condition,
    EventIs,
    Experience,
    ExperienceTree,
    GamifiedPromotion,
    InBasket,
    PageIs,
    PersonalizedPromotion,
    ProductAdded,
    ProductRecommendation,
    SearchMatches,
    SessionElapsed,
    ShopperState,
    Shown,
    TensionCart,
    in_control_group,
)
from shared.offers.levels import explore, week_of

RECENT_EVENT_IDS = 256
SESSION_GAP = timedelta(minutes=30)
NO_CREATIVES: Mapping[str, CampaignCreative] = MappingProxyType({})

Withholding = Literal[
    "held_out",
    "other_retailer",
    "outside_period",
    "campaign_stopped",  # paused, archived or moved off the retailer since the tree's compile
    "budget_exhausted",
    "frequency_cap",
]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShownExperience(_Data):
    experience_id: str
    type: str
    campaign_id: str | None
    details: dict[str, Any] = Field(
        description="What to show, by type (docs/DECISIONS.md): personalized_promotion "
        "(generosity_pct, threshold, basket_value, unlocked, in_basket, offer...), "
        "gamified_promotion (order_id, qualifying_amount, play_token, expires_at), "
        "product_recommendation (product_id, because_of), tension_cart (threshold, "
        "basket_value, missing, reward, unlocked); and, for a campaign's experience whose "
        "campaign has a creative, creative: {title, text, image_url (http(s) or null)}"
    )


class WithheldExperience(_Data):
    experience_id: str
    type: str
    campaign_id: str | None
    reason: Withholding


class Decision(_Data):
    event_id: str
    event_type: str
    retailer_id: str
    shopper_id: str
    session_id: str | None
    occurred_at: datetime
    decided_at: datetime | None = None  # the service's clock when it decided
    tree_version: str
    personal_tree: bool
    from_node: str
    node_id: str
    shown: list[ShownExperience]
    withheld: list[WithheldExperience]

    @property
    def held_out(self) -> list[WithheldExperience]:
        return [w for w in self.withheld if w.reason == "held_out"]


# --- the live state ---------------------------------------------------------------------


def _money(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def apply(state: ShopperState, event: ShopperEvent) -> ShopperState:
    """The state after this event (basket, session, impressions); order-tolerant."""
    moment = event.occurred_at
    changes: dict[str, Any] = {
        "recent_event_ids": (*state.recent_event_ids, event.event_id)[-RECENT_EVENT_IDS:],
        "last_event_at": max(moment, state.last_event_at or moment),
    }
    new_session = (
        event.session_id != state.session_id
        if event.session_id is not None
        else state.last_event_at is None or moment - state.last_event_at > SESSION_GAP
    )
    if new_session:
        changes |= {"session_id": event.session_id, "session_started_at": moment, "impressions": {}}
    elif state.session_started_at is not None and moment < state.session_started_at:
        changes["session_started_at"] = moment  # an earlier event of the session, late
    cleared = state.basket_cleared_at
    match event:
        case ProductAddedToBasketEvent(payload=p) | ProductRemovedFromBasketEvent(payload=p):
            if cleared is None or moment > cleared:
                sign_ = 1 if event.type is EventType.PRODUCT_ADDED_TO_BASKET else -1
                before = state.basket.get(p.product_id)
                line = BasketLine(
                    quantity=(before.quantity if before else 0) + sign_ * p.quantity,
                    unit_price=p.unit_price,
                    brand=p.brand or (before.brand if before else None),
                    category=p.category or (before.category if before else None),
                )
                changes["basket"] = {**state.basket, p.product_id: line}
        case CartValidatedEvent():
            if cleared is None or moment > cleared:
                changes |= {"basket": {}, "basket_cleared_at": moment}
        case ExperienceDisplayedEvent(payload=p):
            impressions = {} if new_session else state.impressions
            changes["impressions"] = {
                **impressions,
                p.experience_id: impressions.get(p.experience_id, 0) + 1,
            }
            changes["impressions_total"] = {
                **state.impressions_total,
                p.experience_id: state.impressions_total.get(p.experience_id, 0) + 1,
            }
        case _:
            pass
    return state.model_copy(update=changes)


def holds(condition: Condition, event: ShopperEvent, state: ShopperState) -> bool:
    match condition:
        case EventIs(types=types):
            return event.type in types
        case ProductAdded(products=products):
            return isinstance(event, ProductAddedToBasketEvent) and products.matches(
                event.payload.product_id, event.payload.brand, event.payload.category
            )
        case InBasket(products=products, at_least=at_least, below=below):
            quantity = state.quantity(products)
            return quantity >= at_least and (below is None or quantity < below)
        case BasketValue(products=products, at_least=at_least, below=below):
            value = state.value(products)
            return (at_least is None or value >= at_least) and (below is None or value < below)
        case PageIs(page_types=page_types):
            return isinstance(event, PageViewedEvent) and event.payload.page_type in page_types
        case SearchMatches(terms=terms):
            query = event.payload.query.lower() if isinstance(event, SearchPerformedEvent) else ""
            return any(term.lower() in query for term in terms) if query else False
        case SessionElapsed(at_least_s=at_least_s):
            started = state.session_started_at or event.occurred_at
            return (event.occurred_at - started).total_seconds() >= at_least_s
        case Shown(experience_id=experience_id, times=times, negate=negate):
            return (state.impressions.get(experience_id, 0) >= times) != negate
    raise ValueError(f"unknown condition {condition!r}")  # pragma: no cover - exhaustive


# --- deciding ---------------------------------------------------------------------------


def _withholding(
    experience: Experience,
    tree: ExperienceTree,
    state: ShopperState,
    retailer_id: str,
    shopper_id: str,
    moment: datetime,
    exhausted: frozenset[str],
    stopped: frozenset[str],
) -> Withholding | None:
    if experience.campaign_id is None:
        return None
    rule = tree.campaigns[experience.campaign_id]
    if retailer_id not in rule.retailer_ids:
        return "other_retailer"
    if not rule.starts_at <= moment < rule.ends_at:
        return "outside_period"
    if experience.campaign_id in stopped:
        return "campaign_stopped"
    if experience.campaign_id in exhausted:
        return "budget_exhausted"
    shown = state.impressions.get(experience.experience_id, 0)
    shown_ever = state.impressions_total.get(experience.experience_id, 0)
    if (rule.max_per_session is not None and shown >= rule.max_per_session) or (
        rule.max_total is not None and shown_ever >= rule.max_total
    ):
        return "frequency_cap"
    if in_control_group(experience.campaign_id, retailer_id, shopper_id, rule.control_share):
        return "held_out"
    return None


def _offer(
    promotion: PersonalizedPromotion | TensionCart, retailer_id: str, event: ShopperEvent
) -> tuple[Decimal, Decimal, dict[str, Any] | None]:
    """The generosity and threshold shown, and the offer's record (policy, level, whether
    explored, propensity): the plan's level, or for a share of shoppers a level drawn
    uniformly, the same for a shopper all ISO week (a campaign's tension cart draws the
    same level as its promotion)."""
    plan = promotion.offer
    generosity = getattr(promotion, "generosity_pct", Decimal(0))
    if plan is None:
        return generosity, promotion.threshold, None
    offer = explore(
        plan.chosen,
        plan.levels,
        plan.explore_share,
        campaign_id=promotion.campaign_id or promotion.experience_id,
        retailer_id=retailer_id,
        shopper_id=event.shopper_id,
        period=week_of(event.occurred_at),
    )
    level = offer.level
    return (
        level.generosity_pct,
        level.threshold(plan.campaign_threshold),
        {
            "policy": plan.policy,
            "level": level.name,
            "policy_level": plan.chosen.name,
            "chosen_by": offer.chosen_by,
            "propensity": round(offer.propensity, 6),
        },
    )


def _details(
    experience: Experience,
    state: ShopperState,
    event: ShopperEvent,
    retailer_id: str,
    signing_key: bytes,
) -> dict[str, Any] | None:
    """What the tracker shows for this experience now; ``None`` when it does not apply."""
    match experience:
        case PersonalizedPromotion():
            # The campaign's product list can be thousands long: the decision names the
            # shopper's basket lines it covers, and how many products it targets.
            products = experience.products
            covered = sorted(
                product_id
                for product_id, line in state.basket.items()
                if line.quantity > 0 and products.matches(product_id, line.brand, line.category)
            )
            value = state.value(products)
            generosity, threshold, offer = _offer(experience, retailer_id, event)
            return {
                "targeted_products": len(products.product_ids),
                "brands": sorted(products.brands),
                "categories": sorted(products.categories),
                "in_basket": covered,
                "basket_value": _money(value),
                "generosity_pct": _money(generosity),
                "threshold": _money(threshold),
                "unlocked": value >= threshold,
                **({"offer": offer} if offer else {}),
            }
        case GamifiedPromotion():
            if not isinstance(event, CartValidatedEvent):
                return None
            qualifying = sum(
                (
                    line.quantity * line.unit_price - line.discount
                    for line in event.payload.lines
                    if experience.products.matches(line.product_id, line.brand, line.category)
                ),
                Decimal(0),
            )
            if qualifying < experience.min_order_value:
                return None
            grant = PlayGrant(
                retailer_id=retailer_id,
                shopper_id=event.shopper_id,
                order_id=event.payload.order_id,
                campaign_id=experience.campaign_id,
                experience_id=experience.experience_id,
                expires_at=event.occurred_at + VALIDITY,
            )
            return {
                "order_id": event.payload.order_id,
                "qualifying_amount": _money(qualifying),
                "play_token": sign(grant, signing_key),
                "expires_at": grant.expires_at.isoformat(),
            }
        case ProductRecommendation():
            line = state.basket.get(experience.product_id)
            if line is not None and line.quantity > 0:
                return None  # already in the basket
            return {"product_id": experience.product_id, "because_of": experience.because_of}
        case TensionCart():
            value = state.value(experience.products)
            _, threshold, _ = _offer(experience, retailer_id, event)
            missing = max(threshold - value, Decimal(0))
            return {
                "threshold": _money(threshold),
                "basket_value": _money(value),
                "missing": _money(missing),
                "reward": experience.reward,
                "unlocked": missing == 0,
            }
    raise ValueError(f"unknown experience {experience!r}")  # pragma: no cover - exhaustive


def decide(
    tree: ExperienceTree,
    state: ShopperState,
    retailer_id: str,
    event: ShopperEvent,
    *,
    signing_key: bytes,
    exhausted_campaigns: frozenset[str] = frozenset(),
    stopped_campaigns: frozenset[str] = frozenset(),
    decided_at: datetime | None = None,
    creatives: Mapping[str, CampaignCreative] = NO_CREATIVES,
) -> tuple[ShopperState, Decision | None]:
    """Apply one event; ``(state, None)`` when it was applied before (a redelivery).

    ``stopped_campaigns``: campaigns of the tree that are no longer live (``live_view``),
    withheld as ``campaign_stopped``; ``exhausted_campaigns``: those out of budget;
    ``creatives``: campaign id -> creative, those of the live default tree
    (``ExperienceTree.creatives``), added to the details of a shown experience of the
    campaign as ``creative`` (whatever tree the shopper is on: an edited creative shows as
    soon as the default tree is recompiled)."""
    if event.event_id in state.recent_event_ids:
        return state, None
    state = apply(state, event)
    node_id = state.node_id
    if state.tree_version != tree.tree_version or node_id not in tree.nodes:
        node_id = tree.root  # a newly compiled tree starts at its root
    from_node = node_id
    assert node_id is not None
    for transition in tree.transitions_from(node_id):
        if all(holds(c, event, state) for c in transition.when):
            node_id = transition.to
            break
    state = state.model_copy(update={"tree_version": tree.tree_version, "node_id": node_id})
    shown: list[ShownExperience] = []
    withheld: list[WithheldExperience] = []
    for experience_id in tree.experiences_at(node_id):
        experience = tree.experiences[experience_id]
        details = _details(experience, state, event, retailer_id, signing_key)
        if details is None:
            continue
        reason = _withholding(
            experience,
            tree,
            state,
            retailer_id,
            event.shopper_id,
            event.occurred_at,
            exhausted_campaigns,
            stopped_campaigns,
        )
        if reason is None:
            creative = creatives.get(experience.campaign_id) if experience.campaign_id else None
            if creative is not None:
                details = {**details, "creative": creative.shown()}
            shown.append(
                ShownExperience(
                    experience_id=experience_id,
                    type=experience.type,
                    campaign_id=experience.campaign_id,
                    details=details,
                )
            )
        else:
            withheld.append(
                WithheldExperience(
                    experience_id=experience_id,
                    type=experience.type,
                    campaign_id=experience.campaign_id,
                    reason=reason,
                )
            )
    return state, Decision(
        event_id=event.event_id,
        event_type=event.type.value,
        retailer_id=retailer_id,
        shopper_id=event.shopper_id,
        session_id=event.session_id,
        occurred_at=event.occurred_at,
        tree_version=tree.tree_version,
        personal_tree=tree.shopper_id is not None,
        from_node=from_node,
        node_id=node_id,
        shown=shown,
        withheld=withheld,
        decided_at=decided_at,
    )
