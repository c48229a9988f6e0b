"""The shop's products: a few of the Complete Journey catalogue, priced from its baskets.

``catalogue.json`` is checked in; ``build()`` made it (``python -m
shared.demo.shop.catalogue`` writes it again): for each category of ``SHELVES`` the most
often bought products (distinct product types first, then distinct manufacturers), each
priced at the median shelf price of its data-set lines, with the brand and category the
replay's events carry (``shared.journey.tracker_simulator``), so that the shop's events
look like the replayed ones. The data set names no product: a product's name is its type
and its brand.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter

CATALOGUE_FILE = Path(__file__).resolve().parent / "catalogue.json"

# (category, products taken): pasta and pasta sauce first, then a small grocery.
SHELVES: tuple[tuple[str, int], ...] = (
    ("DRY NOODLES/PASTA", 3),
    ("PASTA SAUCE", 3),
    ("CHEESE", 2),
    ("TOMATOES", 1),
    ("BAKED BREAD/BUNS/ROLLS", 1),
    ("FLUID MILK PRODUCTS", 1),
    ("EGGS", 1),
    ("BEEF", 2),
    ("CHICKEN", 1),
    ("SALAD MIX", 1),
    ("ONIONS", 1),
    ("TROPICAL FRUIT", 1),
    ("BERRIES", 1),
    ("APPLES", 1),
    ("SOFT DRINKS", 1),
    ("BAG SNACKS", 1),
    ("DELI MEATS", 1),
    ("FROZEN PIZZA", 1),
    ("COFFEE", 1),
)


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: str
    name: str
    brand: str | None
    category: str | None
    unit_price: Decimal


_PRODUCTS = TypeAdapter(list[Product])


@functools.cache
def load(path: Path = CATALOGUE_FILE) -> tuple[Product, ...]:
    return tuple(_PRODUCTS.validate_json(path.read_bytes()))


def by_id(path: Path = CATALOGUE_FILE) -> dict[str, Product]:
    return {p.product_id: p for p in load(path)}


def _name(product_type: str | None, category: str | None, brand: str | None) -> str:
    """``Spaghetti dry (own brand)``; the category first when the type does not say what
    the product is (``Pasta sauce, mainstream (MFR-1251)``)."""
    kind = (product_type or "").strip().lower()
    words = {w for w in re.split(r"[^a-z]+", (category or "").lower()) if len(w) >= 4}
    if category and (not kind or not words & set(re.split(r"[^a-z]+", kind))):
        kind = f"{category.lower()}, {kind}" if kind else category.lower()
    owner = "own brand" if brand == "PRIVATE LABEL" else brand or "unbranded"
    return f"{kind[:1].upper()}{kind[1:]} ({owner})"


def build() -> list[Product]:
    """The catalogue, from the data set (reads ``transactions`` and ``products``)."""
    from shared.journey.dataset import Line, products, read
    from shared.journey.tracker_simulator import brand_of, category_of, price

    catalogue = products()
    columns = (
        "product_id",
        "quantity",
        "sales_value",
        "retail_disc",
        "coupon_disc",
        "coupon_match_disc",
    )
    table = read("transactions", columns)
    rows = {name: table.column(name).to_pylist() for name in columns}
    bought = Counter(rows["product_id"])
    chosen: list[int] = []
    for category, count in SHELVES:
        ranked = sorted(
            (pid for pid, p in catalogue.items() if p.product_category == category),
            key=lambda pid: (-bought[pid], pid),
        )
        seen_types: set[str | None] = set()
        seen_makers: set[int] = set()
        picked: list[int] = []
        for distinct in (True, False):
            for pid in ranked:
                if len(picked) == count:
                    break
                product = catalogue[pid]
                if pid in picked or bought[pid] == 0:
                    continue
                if distinct and (
                    product.product_type in seen_types or product.manufacturer_id in seen_makers
                ):
                    continue
                picked.append(pid)
                seen_types.add(product.product_type)
                seen_makers.add(product.manufacturer_id)
        chosen += picked
    wanted = set(chosen)
    prices: dict[int, list[Decimal]] = {pid: [] for pid in chosen}
    for index, product_id in enumerate(rows["product_id"]):
        if product_id in wanted:
            line = Line(*(rows[name][index] for name in columns))
            unit = price(line, catalogue[product_id]).unit_price
            if unit > 0:
                prices[product_id].append(unit)
    return [
        Product(
            product_id=str(pid),
            name=_name(
                catalogue[pid].product_type,
                category_of(catalogue[pid]),
                brand_of(catalogue[pid]),
            ),
            brand=brand_of(catalogue[pid]),
            category=category_of(catalogue[pid]),
            unit_price=statistics.median_low(prices[pid]),
        )
        for pid in chosen
        if prices[pid]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shared.demo.shop.catalogue", description=__doc__)
    parser.add_argument("--out", type=Path, default=CATALOGUE_FILE)
    args = parser.parse_args(argv)
    products = build()
    args.out.write_text(json.dumps([p.model_dump(mode="json") for p in products], indent=1) + "\n")
    sys.stdout.write(f"{len(products)} products written to {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
