"""The tracker simulator: Complete Journey baskets as the events real trackers would send.

Each basket becomes one shopping session of its household on its store's retailer web
shop, ending with the validated cart at the basket's own time. The mapping is
deterministic: the same seed and time shift give the same events, the same event ids
included (so a second replay is all duplicates). docs/REPLAY.md describes every choice.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.journey.dataset import Basket, Line, Product

RETAILERS = ("freshmart", "greenbasket", "citygrocer")
DEFAULT_SEED = 8451
# The data set's last basket; shifting by whole weeks keeps every weekday a weekday.
DATA_END = datetime(2018, 1, 1, 4, 1, 20)
MAX_QUANTITY = 10_000
_NAMESPACE = uuid.UUID("6f1d1f9e-4c5a-4cf0-9b8e-2f6a1c3d8451")
_CENT = Decimal("0.01")

# Probabilities of the session's optional steps (per product line unless stated).
P_SEARCH = 0.15
P_CATEGORY_PAGE = 0.5
P_CHANGE_OF_MIND = 0.04  # one more unit added, then removed
P_PROMO_CLICK = 0.1  # per session: a click on the home page's promotion banner
P_CANCELLED = 0.015
P_RETURNED = 0.015


@dataclass(frozen=True, slots=True)
class Simulation:
    """The knobs of the mapping: seed, time shift (whole weeks) and the retailers."""

    seed: int = DEFAULT_SEED
    shift_weeks: int = 0
    retailers: tuple[str, ...] = RETAILERS

    def retailer_of(self, store_id: int) -> str:
        """Stores are spread over the retailers by a seeded hash: a store has one retailer."""
        digest = hashlib.sha256(f"{self.seed}:store:{store_id}".encode()).digest()
        return self.retailers[int.from_bytes(digest[:4], "big") % len(self.retailers)]

    def moment(self, at: datetime) -> datetime:
        """A data set time (naive, taken as UTC) moved by the shift."""
        return at.replace(tzinfo=UTC) + timedelta(weeks=self.shift_weeks)


def default_shift_weeks(now: datetime) -> int:
    """The most whole weeks that keep the data set's last basket in the past."""
    return (now - DATA_END.replace(tzinfo=UTC)) // timedelta(weeks=1)


def name_based_uuid(name: str) -> str:
    """``str(uuid.uuid5(_NAMESPACE, name))``, without building ``UUID`` objects (hot path)."""
    h = hashlib.sha1(_NAMESPACE.bytes + name.encode(), usedforsecurity=False).hexdigest()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


SHOPPER_PREFIX = "hh-"


def shopper_id(household_id: int) -> str:
    return f"{SHOPPER_PREFIX}{household_id}"


@dataclass(frozen=True, slots=True)
class Session:
    """One basket's events, as the retailer's tracker sends them (JSON-ready dicts)."""

    retailer_id: str
    basket_id: int
    events: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PricedLine:
    product_id: str
    quantity: int
    unit_price: Decimal
    discount: Decimal
    brand: str | None
    category: str | None


def _cents(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)


def _label(text: str | None) -> str | None:
    cleaned = (text or "").strip()
    return cleaned[:256] or None


def brand_of(product: Product | None) -> str | None:
    """The data set's ``brand`` only says National or Private: the manufacturer is the
    brand a campaign targets; private-label products are the retailer's own brand."""
    if product is None:
        return None
    if product.brand == "Private":
        return "PRIVATE LABEL"
    return f"MFR-{product.manufacturer_id}"


def category_of(product: Product | None) -> str | None:
    if product is None:
        return None
    return _label(product.product_category) or _label(product.department)


def price(line: Line, product: Product | None) -> PricedLine:
    """Shelf price, quantity and the shopper's discount of one data set line.

    The shelf price is what the line costs before the loyalty discounts
    (``sales_value + retail_disc + coupon_match_disc``) per unit; the discount is every
    discount the shopper got (loyalty, coupon match, manufacturer coupon), at most the
    line's price. Quantities outside 1-10,000 (fuel sold by volume, zero-quantity
    adjustments) become one unit at the line's price.
    """
    shelf = Decimal(str(line.sales_value + line.retail_disc + line.coupon_match_disc))
    quantity = line.quantity if 0 < line.quantity <= MAX_QUANTITY else 1
    unit_price = _cents(max(shelf, Decimal(0)) / quantity)
    saved = _cents(line.retail_disc + line.coupon_match_disc + line.coupon_disc)
    discount = min(max(saved, Decimal(0)), unit_price * quantity)
    return PricedLine(
        product_id=str(line.product_id),
        quantity=quantity,
        unit_price=unit_price,
        discount=discount,
        brand=brand_of(product),
        category=category_of(product),
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "all"


def _query(product: Product | None, line: PricedLine) -> str:
    kind = _label(product.product_type) if product else None
    text = (kind or line.category or line.product_id).split(":")[0].split("/")[0]
    return text.strip().lower()[:256] or line.product_id


def session(
    basket: Basket,
    products: dict[int, Product],
    simulation: Simulation,
    not_after: datetime | None = None,
) -> Session:
    """The events of one basket's session; those after ``not_after`` are not sent yet."""
    rng = random.Random(f"{simulation.seed}:{basket.basket_id}")
    retailer_id = simulation.retailer_of(basket.store_id)
    shop = f"https://{retailer_id}.shop.example"
    shopper = shopper_id(basket.household_id)
    session_id = f"b-{basket.basket_id}"
    paid_at = simulation.moment(basket.at)
    lines = [(price(line, products.get(line.product_id)), line) for line in basket.lines]
    rng.shuffle(lines)  # the order the shopper filled the basket in

    steps: list[tuple[str, dict[str, Any]]] = [
        ("page_viewed", {"url": f"{shop}/", "page_type": "home"})
    ]
    if rng.random() < P_PROMO_CLICK:
        steps.append(
            (
                "link_clicked",
                {"url": f"{shop}/", "target_url": f"{shop}/promotions", "label": "weekly deals"},
            )
        )
        steps.append(("page_viewed", {"url": f"{shop}/promotions", "page_type": "promotion"}))
    previous_category: str | None = None
    for priced, line in lines:
        product = products.get(line.product_id)
        if rng.random() < P_SEARCH:
            query = _query(product, priced)
            steps.append(("search_performed", {"query": query, "result_count": rng.randint(3, 80)}))
            steps.append(
                ("page_viewed", {"url": f"{shop}/search?q={_slug(query)}", "page_type": "search"})
            )
        elif (
            priced.category
            and priced.category != previous_category
            and rng.random() < P_CATEGORY_PAGE
        ):
            steps.append(
                (
                    "page_viewed",
                    {
                        "url": f"{shop}/c/{_slug(priced.category)}",
                        "page_type": "category",
                        "category": priced.category,
                    },
                )
            )
        previous_category = priced.category
        product_page: dict[str, Any] = {
            "url": f"{shop}/p/{priced.product_id}",
            "page_type": "product",
            "product_id": priced.product_id,
        }
        if priced.category:
            product_page["category"] = priced.category
        steps.append(("page_viewed", product_page))
        change = {
            "product_id": priced.product_id,
            "unit_price": str(priced.unit_price),
            **({"brand": priced.brand} if priced.brand else {}),
            **({"category": priced.category} if priced.category else {}),
        }
        steps.append(("product_added_to_basket", {**change, "quantity": priced.quantity}))
        if rng.random() < P_CHANGE_OF_MIND and priced.quantity < MAX_QUANTITY:
            steps.append(("product_added_to_basket", {**change, "quantity": 1}))
            steps.append(("product_removed_from_basket", {**change, "quantity": 1}))
    steps.append(("page_viewed", {"url": f"{shop}/basket", "page_type": "basket"}))
    steps.append(("page_viewed", {"url": f"{shop}/checkout", "page_type": "checkout"}))

    # Browsing time: 20-90 s per step, ending 5-60 s before the payment.
    gaps = [rng.uniform(20, 90) for _ in steps]
    moment = paid_at - timedelta(seconds=sum(gaps) + rng.uniform(5, 60))
    timed: list[tuple[datetime, str, dict[str, Any]]] = []
    for gap, (kind, payload) in zip(gaps, steps, strict=True):
        timed.append((moment, kind, payload))
        moment += timedelta(seconds=gap)

    order_id = f"o-{basket.basket_id}"
    priced_lines = sorted((p for p, _ in lines), key=lambda p: int(p.product_id))
    total = sum((p.unit_price * p.quantity - p.discount for p in priced_lines), Decimal(0))
    timed.append(
        (
            paid_at,
            "cart_validated",
            {
                "order_id": order_id,
                "lines": [
                    {
                        "product_id": p.product_id,
                        "quantity": p.quantity,
                        "unit_price": str(p.unit_price),
                        "discount": str(p.discount),
                        **({"brand": p.brand} if p.brand else {}),
                        **({"category": p.category} if p.category else {}),
                    }
                    for p in priced_lines
                ],
                "total": str(total),
            },
        )
    )
    timed.append(
        (
            paid_at + timedelta(seconds=rng.uniform(1, 5)),
            "page_viewed",
            {"url": f"{shop}/order/{order_id}", "page_type": "order_confirmation"},
        )
    )
    fate = rng.random()
    if fate < P_CANCELLED:
        status, later = "cancelled", timedelta(hours=rng.uniform(1, 3))
    elif fate < P_CANCELLED + P_RETURNED:
        status, later = "returned", timedelta(days=rng.uniform(2, 5))
    else:
        status, later = "delivered", timedelta(hours=rng.uniform(20, 30))
    timed.append(
        (paid_at + later, "order_status_changed", {"order_id": order_id, "status": status})
    )

    # The shift is part of the ids: the same basket at another time is another event.
    ids = f"{simulation.seed}:{simulation.shift_weeks}:{basket.basket_id}"
    events = [
        {
            "event_id": name_based_uuid(f"{ids}:{n}"),
            "type": kind,
            "shopper_id": shopper,
            "session_id": session_id,
            "occurred_at": at.isoformat(),
            "schema_version": 1,
            "payload": payload,
        }
        for n, (at, kind, payload) in enumerate(timed)
        if not_after is None or at <= not_after
    ]
    return Session(retailer_id=retailer_id, basket_id=basket.basket_id, events=events)


def sessions(
    baskets: Iterable[Basket],
    products: dict[int, Product],
    simulation: Simulation,
    not_after: datetime | None = None,
) -> Iterator[Session]:
    for basket in baskets:
        yield session(basket, products, simulation, not_after)


def without_shoppers(
    sessions: Iterable[Session], skip: Callable[[str, str], bool]
) -> Iterator[Session]:
    """The sessions minus the events of shoppers ``skip(retailer_id, shopper_id)`` names
    (erased or suppressed shoppers: replays and backfills never bring them back)."""
    for session in sessions:
        events = [e for e in session.events if not skip(session.retailer_id, str(e["shopper_id"]))]
        if events:
            yield Session(session.retailer_id, session.basket_id, events)
