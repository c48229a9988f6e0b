"""A campaign as a shopper sees it: the decision engine's own answers on sample baskets.

The preview does not imitate the engine: it compiles the retailer's default tree with the
campaign alone (as if active, budget intact), plays a sample shopper's events through
``decide`` — a targeted product added below the threshold, then enough to reach it; for a
game, a qualifying order — and returns the experiences shown at each step, creative
included. The back office's preview page (``shared.campaigns``, wired by its composition)
renders them with the demo shop's widget
(``shared/demo/shop/static/widget.js``), so the markup is the shop's.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.campaigns.model import Campaign
from shared.contract.events import (
    CartValidated,
    CartValidatedEvent,
    EventType,
    OrderLine,
    ProductAddedToBasket,
    ProductAddedToBasketEvent,
    ShopperEvent,
)
from shared.decisions.compiler import compile_default_tree
from shared.decisions.engine import decide
from shared.decisions.trees import ShopperState, in_control_group

SAMPLE_PRODUCT = "sample-product"
# The preview's play tokens are signed with a key of its own: they are never valid.
_PREVIEW_KEY = b"preview-only: tokens signed with this are refused by the plays API"


def _shopper(campaign: Campaign, retailer_id: str) -> str:
    """A sample shopper outside the campaign's control group (who would see nothing)."""
    for i in range(1000):
        shopper = f"preview-{i}"
        if not in_control_group(campaign.campaign_id, retailer_id, shopper, campaign.control_share):
            return shopper
    return "preview-0"  # pragma: no cover - a share below 1 leaves someone out


def _product(campaign: Campaign) -> dict[str, Any]:
    """A product the campaign targets: its first product id, else one of its brand or
    category."""
    if campaign.targeted_product_ids:
        return {"product_id": campaign.targeted_product_ids[0]}
    return {
        "product_id": SAMPLE_PRODUCT,
        "brand": campaign.targeted_brands[0] if campaign.targeted_brands else None,
        "category": (
            campaign.targeted_categories[0]
            if campaign.targeted_categories and not campaign.targeted_brands
            else None
        ),
    }


def _moment(campaign: Campaign, now: datetime) -> datetime:
    """Now if the campaign runs now, else its first hour."""
    if campaign.runs_at(now):
        return now
    return min(campaign.starts_at + timedelta(hours=1), campaign.ends_at - timedelta(seconds=1))


def _events(campaign: Campaign, shopper: str, moment: datetime) -> list[tuple[str, ShopperEvent]]:
    product = _product(campaign)
    threshold = campaign.threshold
    envelope = {"shopper_id": shopper, "session_id": "preview", "schema_version": 1}
    if campaign.experience_type == "gamified_promotion":
        price = max(threshold, Decimal("10"))
        order = CartValidatedEvent(
            event_id=str(uuid.uuid4()),
            occurred_at=moment,
            type=EventType.CART_VALIDATED,
            payload=CartValidated(
                order_id="preview-order",
                lines=[OrderLine(quantity=1, unit_price=price, **product)],
                total=price,
            ),
            **envelope,
        )
        return [("After a qualifying order", order)]
    first = threshold / 2 if threshold > 0 else Decimal("2.50")
    steps: list[tuple[str, ShopperEvent]] = []
    below = ProductAddedToBasketEvent(
        event_id=str(uuid.uuid4()),
        occurred_at=moment,
        type=EventType.PRODUCT_ADDED_TO_BASKET,
        payload=ProductAddedToBasket(
            quantity=1, unit_price=first.quantize(Decimal("0.01")), **product
        ),
        **envelope,
    )
    label = "A targeted product in the basket" + (
        f" ({first:.2f} of {threshold:.2f})" if threshold > 0 else ""
    )
    steps.append((label, below))
    if threshold > 0:
        reach = ProductAddedToBasketEvent(
            event_id=str(uuid.uuid4()),
            occurred_at=moment + timedelta(seconds=30),
            type=EventType.PRODUCT_ADDED_TO_BASKET,
            payload=ProductAddedToBasket(
                quantity=1, unit_price=(threshold - first).quantize(Decimal("0.01")), **product
            ),
            **envelope,
        )
        steps.append((f"The threshold reached ({threshold:.2f})", reach))
    return steps


def samples(campaign: Campaign, now: datetime) -> list[dict[str, Any]]:
    """Each step's label and the experiences the engine shows then (JSON-ready)."""
    retailer_id = campaign.retailer_ids[0]
    moment = _moment(campaign, now)
    live = campaign.model_copy(update={"status": "active", "budget_exhausted": False})
    tree = compile_default_tree(retailer_id, [live], moment - timedelta(seconds=1))
    shopper = _shopper(campaign, retailer_id)
    state = ShopperState()
    found = []
    for label, event in _events(campaign, shopper, moment):
        state, decision = decide(
            tree,
            state,
            retailer_id,
            event,
            signing_key=_PREVIEW_KEY,
            creatives=tree.creatives(),
            decided_at=event.occurred_at,
        )
        shown = [e.model_dump(mode="json") for e in decision.shown] if decision else []
        found.append({"label": label, "experiences": shown})
    return found
