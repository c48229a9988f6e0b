"""Candidate grouping, boundaries, rankings, the gate and the ranker's learning."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from shared.nightly.evaluation import Result, Targets, compare, gate, rank_by, split_recall
from shared.nightly.features import HORIZON_DAYS, boundaries, end_of_history
from shared.nightly.training import FEATURES, Candidates, fit_ranker


def test_boundaries_put_every_training_label_before_the_evaluation_boundary() -> None:
    items = boundaries(date(2026, 11, 23))
    end = end_of_history(date(2026, 11, 23))
    assert end == datetime(2026, 11, 24, tzinfo=UTC)
    by_role = {b.role: [x.at for x in items if x.role == b.role] for b in items}
    assert by_role["score"] == [end]
    (evaluate,) = by_role["evaluate"]
    assert (end - evaluate).days == HORIZON_DAYS
    for train in by_role["train"]:
        # Labels span [train, train + horizon): they end before the held-out weeks.
        assert (evaluate - train).days >= HORIZON_DAYS


def _candidates(keys: list[tuple[str, str, str]], x: np.ndarray, labels: np.ndarray) -> Candidates:
    return Candidates(
        keys=keys,
        products=[f"p{i}" for i in range(len(keys))],
        brands=[None] * len(keys),
        categories=[None] * len(keys),
        x=x,
        label_next=labels,
        label_28d=labels,
    )


def test_groups_are_runs_of_the_same_shopper_and_boundary() -> None:
    keys = [("b1", "r", "s1")] * 3 + [("b1", "r", "s2")] * 2 + [("b2", "r", "s1")]
    c = _candidates(keys, np.zeros((6, len(FEATURES))), np.zeros(6))
    assert c.groups() == [(0, 3), (3, 5), (5, 6)]
    assert _candidates([], np.zeros((0, len(FEATURES))), np.zeros(0)).groups() == []


def test_rank_by_orders_by_score_then_product() -> None:
    assert rank_by(["b", "a", "c"], [0.5, 0.5, 0.9]) == ["c", "a", "b"]


def test_the_ranker_learns_which_candidates_come_back() -> None:
    rng = np.random.default_rng(3)
    shoppers, per_shopper = 300, 20
    x = rng.normal(size=(shoppers * per_shopper, len(FEATURES)))
    signal = x[:, FEATURES.index("p_decay_14")]
    labels = (signal + rng.normal(scale=0.5, size=signal.size) > 1.0).astype(float)
    keys = [("b", "r", f"s{i // per_shopper}") for i in range(shoppers * per_shopper)]
    model = fit_ranker(_candidates(keys, x, labels))
    scores = model.predict(x)
    # The learnt score orders candidates like the signal does.
    assert np.corrcoef(scores, signal)[0, 1] > 0.8


def test_fit_ranker_refuses_data_without_any_positive() -> None:
    keys = [("b", "r", "s")] * 5
    with pytest.raises(ValueError):
        fit_ranker(_candidates(keys, np.zeros((5, len(FEATURES))), np.zeros(5)))


def test_compare_reports_methods_and_paired_differences() -> None:
    shoppers = [("r", f"s{i}") for i in range(50)]
    truth = {k: {"a", "b"} for k in shoppers}
    per_method = {
        "ranker": {k: ["a", "b", "x"] for k in shoppers},
        "p_topfreq": {k: ["a", "x", "y"] for k in shoppers},
    }
    results = {
        (r.method, r.metric): r for r in compare("product", "t", per_method, shoppers, truth)
    }
    assert results[("ranker", "recall@10")].value == pytest.approx(1.0)
    assert results[("p_topfreq", "recall@10")].value == pytest.approx(0.5)
    diff = results[("ranker - p_topfreq", "recall@10")]
    assert diff.value == pytest.approx(0.5)
    assert diff.ci_low == pytest.approx(0.5) and diff.shoppers == 50


def test_a_run_without_evaluated_shoppers_does_not_pass_the_gate() -> None:
    assert compare("product", "t", {"ranker": {}}, [], {}) == []
    assert gate([])["gate_passed"] is False


def test_split_recall_separates_repeat_and_new_items() -> None:
    key = ("r", "s")
    targets = Targets({key: {"old", "new"}}, {key: {"old", "new"}}, {key: {"old"}}, {})
    rows = {
        (r.target, r.metric): r.value
        for r in split_recall({"ranker": {key: ["old", "x"]}}, targets)
    }
    assert rows[("next_basket_repeat_items", "recall@10")] == 1.0
    assert rows[("next_basket_new_items", "recall@10")] == 0.0


def _result(method: str, value: float, low: float | None = None) -> Result:
    return Result("product", "next_basket", method, "recall@10", value, low, None, 100)


def test_gate_needs_a_difference_surely_above_zero() -> None:
    passing = [
        _result("ranker", 0.20),
        _result("p_topfreq", 0.16),
        _result("ranker - p_topfreq", 0.04, 0.01),
    ]
    assert gate(passing)["gate_passed"] is True
    unsure = [*passing[:2], _result("ranker - p_topfreq", 0.04, -0.01)]
    assert gate(unsure)["gate_passed"] is False
    worse = [_result("ranker", 0.15), _result("p_topfreq", 0.16), passing[2]]
    assert gate(worse)["gate_passed"] is False
    # NIGHTLY_GATE_MIN_LIFT: +25 % over 0.16 is 0.20, which 0.20 does not exceed.
    assert gate(passing, 0.2)["gate_passed"] is True
    assert gate(passing, 0.25)["gate_passed"] is False
