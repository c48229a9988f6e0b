"""Ranking metrics and the paired bootstrap (pure: lists, sets and numpy)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from collections.abc import Set as AbstractSet

import numpy as np
import numpy.typing as npt


def recall_at_k(ranked: Sequence[Hashable], target: AbstractSet[Hashable], k: int = 10) -> float:
    """Share of the target found in the first ``k`` recommendations (target not empty)."""
    if not target:
        raise ValueError("recall of an empty target")
    return len(set(ranked[:k]) & target) / len(target)


def ndcg_at_k(ranked: Sequence[Hashable], target: AbstractSet[Hashable], k: int = 10) -> float:
    """Binary-relevance NDCG: DCG of the first ``k`` over the best possible DCG."""
    if not target:
        raise ValueError("NDCG of an empty target")
    seen: set[Hashable] = set()
    dcg = 0.0
    for position, item in enumerate(ranked[:k]):
        if item in target and item not in seen:
            dcg += 1.0 / math.log2(position + 2)
        seen.add(item)
    ideal = sum(1.0 / math.log2(position + 2) for position in range(min(k, len(target))))
    return dcg / ideal


def distinct(items: Iterable[Hashable]) -> list[Hashable]:
    """The items in order, each once (a ranking mapped to a coarser level)."""
    seen: set[Hashable] = set()
    out: list[Hashable] = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def paired_bootstrap(
    differences: npt.ArrayLike, resamples: int = 2000, seed: int = 8451, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of paired per-shopper differences.

    Shoppers are resampled with replacement; each resample's mean difference is one draw.
    """
    values = np.asarray(differences, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("bootstrap of no shopper")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // values.size)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)
