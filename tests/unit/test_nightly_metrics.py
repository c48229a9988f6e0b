"""Ranking metrics and the paired bootstrap of the nightly evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.nightly.metrics import distinct, ndcg_at_k, paired_bootstrap, recall_at_k


def test_recall_counts_hits_in_the_first_k_over_the_target() -> None:
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"a", "d", "z"}, k=10) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, {"a", "d", "z"}, k=2) == pytest.approx(1 / 3)
    assert recall_at_k([], {"a"}) == 0.0


def test_recall_of_an_empty_target_is_refused() -> None:
    with pytest.raises(ValueError):
        recall_at_k(["a"], set())


def test_ndcg_is_one_for_a_perfect_ranking_and_discounts_late_hits() -> None:
    assert ndcg_at_k(["a", "b", "x"], {"a", "b"}) == pytest.approx(1.0)
    late = ndcg_at_k(["x", "a"], {"a"})
    assert late == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["x", "y"], {"a"}) == 0.0
    # The ideal DCG is capped at k hits: 12 targets, 10 hits in 10 slots is perfect.
    target = {str(i) for i in range(12)}
    assert ndcg_at_k([str(i) for i in range(10)], target, k=10) == pytest.approx(1.0)


def test_ndcg_counts_a_repeated_item_once() -> None:
    assert ndcg_at_k(["a", "a"], {"a", "b"}) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_distinct_keeps_first_occurrences_in_order() -> None:
    assert distinct(["p", "q", "p", "r", "q"]) == ["p", "q", "r"]


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_shoppers() -> None:
    rng = np.random.default_rng(1)
    small = rng.normal(0.02, 0.1, size=200)
    large = rng.normal(0.02, 0.1, size=5000)
    low_s, high_s = paired_bootstrap(small)
    low_l, high_l = paired_bootstrap(large)
    assert low_s < small.mean() < high_s
    assert low_l < large.mean() < high_l
    assert high_l - low_l < high_s - low_s
    # About 1.96 standard errors each side.
    assert (high_l - low_l) / 2 == pytest.approx(1.96 * large.std() / np.sqrt(large.size), rel=0.15)


def test_bootstrap_of_a_null_difference_straddles_zero_and_is_deterministic() -> None:
    values = np.random.default_rng(2).normal(0.0, 0.1, size=1000)
    values -= values.mean()
    low, high = paired_bootstrap(values)
    assert low < 0 < high
    assert paired_bootstrap(values) == (low, high)


def test_bootstrap_of_no_shopper_is_refused() -> None:
    with pytest.raises(ValueError):
        paired_bootstrap([])
