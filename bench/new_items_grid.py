"""How the new-item recommender's settings were chosen, re-run on the data set itself.

For each boundary (days before the end of the Complete Journey year), every shopper's
history is the 365 days before it and their target the products of their first basket
in the 28 days after it that they had not bought in that history (shoppers with at least
one). Shoppers are ``(retailer, household)`` pairs, retailers assigned to stores as the
replay does. Each setting of ``shared.nightly.neighbours.recommend`` is compared with the
retailer's most popular products the shopper never bought (365 days, ``g_topfreq_new``):
mean recall@10 and the paired bootstrap interval of the difference.

The three **validation** boundaries (56, 84 and 112 days before the end) have all their
labels before the **evaluation** boundary (28 days before the end, the nightly run's): the
setting kept is the one with the best mean difference over the validation boundaries,
and its evaluation figure is printed last. No store is read: the parquet files only.

    python -m bench.new_items_grid [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from shared.journey.dataset import read
from shared.journey.tracker_simulator import Simulation
from shared.nightly.metrics import paired_bootstrap
from shared.nightly.neighbours import RetailerHistory, ShopperKey, recommend

VALIDATION_DAYS = (56, 84, 112)
EVALUATION_DAYS = 28
HISTORY_DAYS, HORIZON_DAYS, RECENT_DAYS, K = 365, 28, 56, 10
SIMILARITIES = ("binary", "log_idf")
NEIGHBOURS = (30, 50, 100)
WEIGHTS = (1.0, 3.0)


def load_lines() -> tuple[list[tuple[str, str, str, int, datetime]], datetime]:
    """(retailer, shopper, product, basket, at) per line, and the last moment of the data."""
    table = read(
        "transactions",
        ["household_id", "store_id", "basket_id", "product_id", "transaction_timestamp"],
    ).to_pydict()
    simulation = Simulation()
    retailer_of: dict[int, str] = {}
    lines = []
    for household, store, basket, product, at in zip(
        table["household_id"],
        table["store_id"],
        table["basket_id"],
        table["product_id"],
        table["transaction_timestamp"],
        strict=True,
    ):
        retailer = retailer_of.setdefault(store, simulation.retailer_of(int(store)))
        lines.append((retailer, f"{retailer}:{household}", str(product), int(basket), at))
    return lines, max(line[4] for line in lines)


def boundary_data(
    lines: list[tuple[str, str, str, int, datetime]], at: datetime
) -> tuple[dict[str, RetailerHistory], dict[ShopperKey, set[str]]]:
    start, recent, horizon = (
        at - timedelta(days=HISTORY_DAYS),
        at - timedelta(days=RECENT_DAYS),
        at + timedelta(days=HORIZON_DAYS),
    )
    baskets: dict[ShopperKey, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    recents: dict[ShopperKey, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    first: dict[ShopperKey, tuple[datetime, int]] = {}
    future: dict[tuple[ShopperKey, int], set[str]] = defaultdict(set)
    for retailer, shopper, product, basket, when in lines:
        key = (retailer, shopper)
        if start <= when < at:
            baskets[key][product].add(basket)
            if when >= recent:
                recents[key][product].add(basket)
        elif at <= when < horizon:
            first[key] = min(first.get(key, (when, basket)), (when, basket))
            future[(key, basket)].add(product)
    histories: dict[str, RetailerHistory] = {}
    for key in sorted(baskets):
        items = [(p, len(b), len(recents[key].get(p, ()))) for p, b in sorted(baskets[key].items())]
        histories.setdefault(key[0], RetailerHistory()).add(key[1], items)
    truth = {}
    for key, (_, basket) in first.items():
        if key in baskets:
            new = future[(key, basket)] - set(baskets[key])
            if new:
                truth[key] = new
    return histories, truth


def popular_new(histories: dict[str, RetailerHistory]) -> dict[ShopperKey, list[str]]:
    """Per shopper, the retailer's 365-day most popular products they never bought."""
    out: dict[ShopperKey, list[str]] = {}
    for retailer, history in histories.items():
        counts: dict[str, int] = defaultdict(int)
        own: dict[int, set[str]] = defaultdict(set)
        for row, column, n in zip(history.rows, history.columns, history.baskets, strict=True):
            counts[history.products[column]] += n
            own[row].add(history.products[column])
        ranked = sorted(counts, key=lambda p: (-counts[p], p))[:500]
        for i, shopper in enumerate(history.shoppers):
            out[(retailer, shopper)] = [p for p in ranked if p not in own[i]][:K]
    return out


def recall(ranked: list[str], target: set[str]) -> float:
    return len(set(ranked[:K]) & target) / len(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write every figure there too")
    args = parser.parse_args(argv)
    lines, end = load_lines()
    settings = list(itertools.product(SIMILARITIES, NEIGHBOURS, WEIGHTS))
    figures: dict[str, dict[str, Any]] = defaultdict(dict)
    for days in (*VALIDATION_DAYS, EVALUATION_DAYS):
        histories, truth = boundary_data(lines, end - timedelta(days=days))
        keys = sorted(truth)
        popular = popular_new(histories)
        baseline = np.array([recall(popular[k], truth[k]) for k in keys])
        print(f"boundary -{days} d: {len(keys)} shoppers, popularity {baseline.mean():.4f}")
        for similarity, neighbours, weight in settings:
            name = f"{similarity} n={neighbours} w={weight:g}"
            ranked = recommend(
                histories, keys, K, neighbours=neighbours, weight=weight, similarity=similarity
            )["neighbours"]
            values = np.array([recall(ranked.get(k, []), truth[k]) for k in keys])
            low, high = paired_bootstrap(values - baseline)
            figures[name][str(days)] = {
                "recall": float(values.mean()),
                "popularity": float(baseline.mean()),
                "difference": float((values - baseline).mean()),
                "ci95": [low, high],
                "shoppers": len(keys),
            }
            print(
                f"  {name:24s} {values.mean():.4f}  {(values - baseline).mean():+.4f} "
                f"[{low:+.4f}, {high:+.4f}]",
                flush=True,
            )
    mean = {
        n: float(np.mean([f[str(d)]["difference"] for d in VALIDATION_DAYS]))
        for n, f in figures.items()
    }
    chosen = max(mean, key=lambda n: (mean[n], n))
    print("\nsetting | " + " | ".join(f"-{d} d" for d in VALIDATION_DAYS) + " | mean | evaluation")
    for name in sorted(figures, key=lambda n: -mean[n]):
        row = figures[name]
        cells = [f"{row[str(d)]['difference']:+.4f}" for d in VALIDATION_DAYS]
        ev = row[str(EVALUATION_DAYS)]
        print(
            f"{name} | {' | '.join(cells)} | {mean[name]:+.4f} | {ev['difference']:+.4f} "
            f"[{ev['ci95'][0]:+.4f}, {ev['ci95'][1]:+.4f}]"
        )
    ev = figures[chosen][str(EVALUATION_DAYS)]
    print(
        f"\nchosen on validation: {chosen} (mean difference {mean[chosen]:+.4f}); "
        f"evaluation: {ev['recall']:.4f} vs popularity {ev['popularity']:.4f}, "
        f"{ev['difference']:+.4f} [{ev['ci95'][0]:+.4f}, {ev['ci95'][1]:+.4f}]"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"chosen": chosen, "figures": figures}, indent=1))
    return 0 if math.isfinite(ev["difference"]) else 1


if __name__ == "__main__":
    sys.exit(main())
