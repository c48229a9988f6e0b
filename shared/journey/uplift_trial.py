"""Does the campaign report recover a known effect? A pure-logic trial of its estimator.

One trial is one seeded campaign (a personalized promotion on a set of products, with a
control group drawn as the engine draws it, ``in_control_group``) over a population of
shoppers with a few sessions each. A shopper becomes eligible the first time a targeted
product enters the basket (often not in the first session: shoppers are exposed late),
and from then on every session with a targeted product in the basket is a decision of
the campaign: ``shown`` or ``held_out``. Exposed shoppers react to what they are shown
through the response model (``shared.journey.response``); held-out shoppers never do.

The trial writes rows shaped like the read models (``decision_experiences``, ``orders``,
``sold_products``), groups them as the report's groups query does (``group_rows``: the
same definitions, in Python, for a run without BigQuery), and measures the uplift with
the report's own function (``shared.campaigns.report.uplifts``). The truth is kept apart:
the effect the model injected, per exposed shopper (targeted sales) and per exposed buyer
(basket value), the counterfactual being the same shopper's baskets without the response.

``run_trials`` repeats it over seeds and counts coverage (the 95% interval contains the
truth) and detection (the interval excludes zero): ``tests/unit/test_uplift_recovery.py``
at a small scale, ``make bench-uplift`` (``bench/uplift.py``) at full size.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.campaigns.report import uplifts
from shared.decisions.trees import in_control_group
from shared.journey.response import BasketLine, ResponseModel

RETAILER = "freshmart"
CAMPAIGN = "c-trial"
START = datetime(2026, 1, 5, tzinfo=UTC)
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class TrialShape:
    """The population and the campaign of one trial."""

    shoppers: int = 6_000
    control_share: float = 0.5  # half held out: the most power for a given population
    products: int = 300
    targeted: int = 30  # products 0..targeted-1 are the campaign's
    mean_sessions: float = 2.5
    mean_lines: float = 9.0
    threshold: Decimal = Decimal("8.00")  # the promotion's threshold on targeted value
    weeks: int = 4


@dataclass
class Rows:
    """What the read models would hold for the trial's campaign."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    sold: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Truth:
    """The injected effect: per exposed shopper, what the response added (every order
    since the shopper's first decision, 0 for an order without a response)."""

    added_targeted: dict[str, float] = field(default_factory=dict)
    added_per_order: dict[str, list[float]] = field(default_factory=dict)

    def targeted_sales(self) -> float:
        values = list(self.added_targeted.values())
        return statistics.fmean(values) if values else 0.0

    def basket_value(self) -> float:
        values = [statistics.fmean(v) for v in self.added_per_order.values() if v]
        return statistics.fmean(values) if values else 0.0


def _price(rng: random.Random) -> Decimal:
    return Decimal(str(round(rng.lognormvariate(0.9, 0.6), 2))).quantize(_CENT)


def simulate(
    seed: int, model: ResponseModel, shape: TrialShape = TrialShape()
) -> tuple[Rows, Truth]:
    """One trial's read-model rows, and the truth beside them."""
    rng = random.Random(seed)
    prices = [_price(rng) for _ in range(shape.products)]
    rows, truth = Rows(), Truth()
    # Every product's line of 1 and of 2 units, built once (the loop below is the hot path).
    lines = [
        (BasketLine(str(p), 1, price), BasketLine(str(p), 2, price))
        for p, price in enumerate(prices)
    ]
    others = shape.products - shape.targeted
    for n in range(shape.shoppers):
        shopper = f"s{seed}-{n}"
        held = in_control_group(CAMPAIGN, RETAILER, shopper, shape.control_share)
        affinity = rng.betavariate(1.0, 15.0)  # how often the shopper buys targeted products
        sessions = rng.randint(1, 2 * round(shape.mean_sessions) - 1)
        moments = sorted(
            START + timedelta(seconds=rng.uniform(0, shape.weeks * 7 * 86_400))
            for _ in range(sessions)
        )
        first_at: datetime | None = None
        for s, moment in enumerate(moments):
            session_id = f"{shopper}-{s}"
            basket: dict[str, BasketLine] = {}
            order: list[BasketLine] = []
            decided_at: datetime | None = None
            for i in range(rng.randint(1, 2 * round(shape.mean_lines) - 1)):
                if rng.random() < affinity:
                    product = int(rng.random() * shape.targeted)
                else:
                    product = shape.targeted + int(rng.random() * others)
                line = lines[product][rng.random() < 0.25]  # 2 units in a quarter of lines
                if line.product_id in basket:
                    continue
                basket[line.product_id] = line
                order.append(line)
                if product < shape.targeted and decided_at is None:
                    decided_at = moment + timedelta(seconds=30 * i)  # decided on this add
            added = Decimal(0)
            if decided_at is not None:
                first_at = first_at or decided_at
                rows.decisions.append(
                    {
                        "retailer_id": RETAILER,
                        "shopper_id": shopper,
                        "campaign_id": CAMPAIGN,
                        "outcome": "held_out" if held else "shown",
                        "occurred_at": decided_at,
                    }
                )
                if not held:
                    in_basket = sorted(p for p in basket if int(p) < shape.targeted)
                    value = sum(
                        (basket[p].unit_price * basket[p].quantity for p in in_basket), Decimal(0)
                    )
                    reaction = model.respond(
                        session_id,
                        {
                            "experience_id": "x-trial",
                            "campaign_id": CAMPAIGN,
                            "type": "personalized_promotion",
                            "details": {
                                "in_basket": in_basket,
                                "basket_value": str(value),
                                "threshold": str(shape.threshold),
                                "unlocked": value >= shape.threshold,
                            },
                        },
                        basket,
                    )
                    if reaction.addition is not None:
                        order.append(reaction.addition.line)
                        added = reaction.addition.amount
            paid_at = moment + timedelta(seconds=30 * len(order) + 60)
            if first_at is not None and not held:
                truth.added_targeted[shopper] = truth.added_targeted.get(shopper, 0.0) + float(
                    added
                )
                truth.added_per_order.setdefault(shopper, []).append(float(added))
            rows.orders.append(
                {
                    "retailer_id": RETAILER,
                    "shopper_id": shopper,
                    "occurred_at": paid_at,
                    "total": sum((li.unit_price * li.quantity for li in order), Decimal(0)),
                }
            )
            for li in order:
                rows.sold.append(
                    {
                        "retailer_id": RETAILER,
                        "shopper_id": shopper,
                        "occurred_at": paid_at,
                        "product_id": li.product_id,
                        "amount": li.unit_price * li.quantity,
                    }
                )
    return rows, truth


def _group(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.variance(values) if len(values) > 1 else None


def group_rows(rows: Rows, targeted: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The report's groups query (``groups_sql``) over the trial's rows, in Python: a
    shopper's group is its decisions' outcomes (both: ``mixed``); from its first eligible
    decision on, its mean basket value (if it ordered) and its targeted sales (0 if none)."""
    products = set(targeted)
    first: dict[str, datetime] = {}
    outcomes: dict[str, set[str]] = defaultdict(set)
    for d in rows.decisions:
        key = d["shopper_id"]
        first[key] = min(first.get(key, d["occurred_at"]), d["occurred_at"])
        outcomes[key].add(d["outcome"])
    baskets: dict[str, list[float]] = defaultdict(list)
    for o in rows.orders:
        if o["shopper_id"] in first and o["occurred_at"] >= first[o["shopper_id"]]:
            baskets[o["shopper_id"]].append(float(o["total"]))
    sales: dict[str, float] = defaultdict(float)
    for s in rows.sold:
        at = first.get(s["shopper_id"])
        if at is not None and s["occurred_at"] >= at and s["product_id"] in products:
            sales[s["shopper_id"]] += float(s["amount"])
    per_group: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for shopper, seen in outcomes.items():
        grp = "mixed" if len(seen) > 1 else ("held_out" if "held_out" in seen else "exposed")
        basket_values, targeted_sales = per_group[grp]
        if baskets[shopper]:
            basket_values.append(statistics.fmean(baskets[shopper]))
        targeted_sales.append(sales[shopper])
    groups = {}
    for grp, (basket_values, targeted_sales) in per_group.items():
        basket_mean, basket_var = _group(basket_values)
        targeted_mean, targeted_var = _group(targeted_sales)
        groups[grp] = {
            "grp": grp,
            "shoppers": len(targeted_sales),
            "buyers": len(basket_values),
            "basket_mean": basket_mean,
            "basket_var": basket_var,
            "targeted_mean": targeted_mean,
            "targeted_var": targeted_var,
        }
    return groups


@dataclass(frozen=True, slots=True)
class TrialResult:
    seed: int
    truth: dict[str, float]
    measured: dict[str, dict[str, Any]]

    def covers(self, metric: str, value: float | None = None) -> bool:
        """Whether the 95% interval contains ``value`` (default: the truth)."""
        low, high = self.measured[metric]["ci95"]
        target = self.truth[metric] if value is None else value
        return bool(low <= target <= high)

    def detects(self, metric: str) -> bool:
        low, high = self.measured[metric]["ci95"]
        return bool(low > 0 or high < 0)


def trial(seed: int, model: ResponseModel, shape: TrialShape = TrialShape()) -> TrialResult:
    rows, truth = simulate(seed, model, shape)
    measured = uplifts(group_rows(rows, (str(p) for p in range(shape.targeted))))
    return TrialResult(
        seed,
        {"targeted_sales": truth.targeted_sales(), "basket_value": truth.basket_value()},
        measured,
    )


def run_trials(
    seeds: Iterable[int], model: ResponseModel, shape: TrialShape = TrialShape()
) -> dict[str, Any]:
    """Coverage of the truth, of zero, and detection, per metric, over ``seeds``."""
    results = [trial(seed, replace(model, seed=seed), shape) for seed in seeds]
    summary: dict[str, Any] = {"runs": len(results), "metrics": {}}
    for metric in ("targeted_sales", "basket_value"):
        summary["metrics"][metric] = {
            "coverage": sum(r.covers(metric) for r in results) / len(results),
            "covers_zero": sum(r.covers(metric, 0.0) for r in results) / len(results),
            "detection": sum(r.detects(metric) for r in results) / len(results),
            "mean_truth": statistics.fmean(r.truth[metric] for r in results),
            "mean_measured": statistics.fmean(
                float(r.measured[metric]["difference"]) for r in results
            ),
            "mean_half_width": statistics.fmean(
                (r.measured[metric]["ci95"][1] - r.measured[metric]["ci95"][0]) / 2 for r in results
            ),
        }
    return summary
