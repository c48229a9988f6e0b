"""Order confirmation: the shop's back end turns a basket into a ``cart_validated`` event.

The browser says which products and how many; the back end prices them from its own
catalogue (a page's prices are never trusted), names the order, and sends the event with
the retailer's secret key (``OrderEvents``): only a retailer's back end may confirm an
order, and a confirmed order is what may grant the shopper a play.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.demo.shop.catalogue import Product

MAX_LINES = 100


class BasketLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: str = Field(max_length=64)
    quantity: int = Field(gt=0, le=100)


class Checkout(BaseModel):
    """What the page posts to ``/api/checkout``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lines: list[BasketLine] = Field(min_length=1, max_length=MAX_LINES)
    session_id: str | None = Field(default=None, max_length=128)


class OrderRefusedError(Exception):
    """The ingest API did not accept the order's event (``code``: its reason)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownProductError(ValueError):
    pass


class OrderEvents(Protocol):
    def confirm(self, event: dict[str, Any]) -> None:
        """Send one order event with the secret key; ``OrderRefusedError`` if refused."""
        ...


@dataclass(frozen=True)
class Confirmed:
    order_id: str
    event_id: str
    total: Decimal


def _money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def order_event(
    shopper_id: str,
    checkout: Checkout,
    products: Mapping[str, Product],
    now: datetime | None = None,
) -> tuple[dict[str, Any], Confirmed]:
    """The ``cart_validated`` event of this basket (a fresh event and order id)."""
    quantities: dict[str, int] = {}
    for line in checkout.lines:
        if line.product_id not in products:
            raise UnknownProductError(line.product_id)
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    lines = []
    total = Decimal(0)
    for product_id, quantity in quantities.items():
        product = products[product_id]
        total += product.unit_price * quantity
        lines.append(
            {
                "product_id": product_id,
                "quantity": quantity,
                "unit_price": _money(product.unit_price),
                **({"brand": product.brand} if product.brand else {}),
                **({"category": product.category} if product.category else {}),
            }
        )
    confirmed = Confirmed(
        order_id=f"order-{uuid.uuid4().hex[:16]}", event_id=str(uuid.uuid4()), total=total
    )
    event = {
        "event_id": confirmed.event_id,
        "type": "cart_validated",
        "shopper_id": shopper_id,
        "session_id": checkout.session_id,
        "occurred_at": (now or datetime.now(UTC)).isoformat(),
        "schema_version": 1,
        "payload": {"order_id": confirmed.order_id, "lines": lines, "total": _money(total)},
    }
    return event, confirmed


def confirm_order(
    shopper_id: str,
    checkout: Checkout,
    products: Mapping[str, Product],
    events: OrderEvents,
) -> Confirmed:
    event, confirmed = order_event(shopper_id, checkout, products)
    events.confirm(event)
    return confirmed
