"""A fixed workload timed beside a measurement: how fast this machine is right now.

    .venv/bin/python -m bench.calibration

The nightly scale bench times the shard job at several population sizes, minutes apart,
on a shared 2-core machine whose speed drifts between runs (the same 10,000-shopper shard
job has taken 3.3 and 5.0 ms a shopper an hour apart). A growth read across sizes must be
told apart from that drift, so each run also times this workload, whose size never
changes, just before and just after its shard job: a per-shopper figure divided by the
calibration of its own run compares across runs.

The workload is the shard task's own kinds of work on seeded synthetic data, independent of
any store: the new-product recommendation (``prepare_pool`` then ``recommend_from_pool``:
sparse products and numpy on a fixed pool and batch; a task prepares its pools once, so
this part weighs the preparation more than a task does) and pure-Python object building
and JSON round trips (a stand-in for tree compilation, not the compiler). Each part is
timed three times; the median counts.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from shared.nightly.neighbours import RetailerHistory, prepare_pool, recommend_from_pool

POOL_SHOPPERS = 5_000
BATCH_SHOPPERS = 2_000  # a shard task's batch
PRODUCTS = 4_000
PRODUCTS_A_SHOPPER = 40
TREES = 5_000
REPEATS = 3


def _history(prefix: str, shoppers: int, rng: np.random.Generator) -> RetailerHistory:
    """Shoppers each with ``PRODUCTS_A_SHOPPER`` products drawn by a Zipf-like popularity."""
    weights = 1.0 / np.arange(1, PRODUCTS + 1)
    weights /= weights.sum()
    history = RetailerHistory()
    for s in range(shoppers):
        chosen = rng.choice(PRODUCTS, size=PRODUCTS_A_SHOPPER, replace=False, p=weights)
        baskets = rng.integers(1, 12, size=PRODUCTS_A_SHOPPER)
        recent = rng.integers(0, 3, size=PRODUCTS_A_SHOPPER)
        history.add(
            f"{prefix}{s}",
            ((f"p{c}", int(b), int(r)) for c, b, r in zip(chosen, baskets, recent, strict=True)),
        )
    return history


def _neighbours_workload() -> Callable[[], object]:
    rng = np.random.default_rng(20261207)
    pool_history = _history("pool-", POOL_SHOPPERS, rng)
    batch = _history("batch-", BATCH_SHOPPERS, rng)

    def run() -> object:
        pool = prepare_pool(pool_history)
        assert pool is not None
        return recommend_from_pool(pool, batch, 10)

    return run


def _python_workload() -> list[dict[str, Any]]:
    """Nested dicts built, serialized, parsed and sorted: the interpreter's own speed."""
    trees: list[dict[str, Any]] = []
    for t in range(TREES):
        tree = {
            "shopper": f"s{t}",
            "nodes": {
                f"n{i}": {"products": [f"p{(t * 7 + i * 13 + j) % 997}" for j in range(8)]}
                for i in range(12)
            },
        }
        trees.append(json.loads(json.dumps(tree, sort_keys=True)))
    return sorted(trees, key=lambda tree: json.dumps(tree["nodes"]["n3"]))


def _median_seconds(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def calibrate() -> dict[str, float]:
    """Seconds of each part (median of ``REPEATS``) and their sum."""
    neighbours = _median_seconds(_neighbours_workload())
    python = _median_seconds(_python_workload)
    return {
        "neighbours_seconds": round(neighbours, 3),
        "python_seconds": round(python, 3),
        "seconds": round(neighbours + python, 3),
    }


if __name__ == "__main__":
    print(json.dumps(calibrate()))
    sys.exit(0)
