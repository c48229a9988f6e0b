"""The offer policy: levels within the campaign's bounds, exploration with honest
propensities, the budget, the gate, and a small version of ``make bench-policy`` (the
learnt policy against the uniform policy and today's rules where the truth is known)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import numpy as np
import pytest

from shared.journey.offer_trial import OfferShape, trial
from shared.offers.learning import CONTROL, OfferLogs, UpliftModel, choose, gate
from shared.offers.levels import OfferLevel, explore, offer_levels


def test_levels_stay_within_the_campaign_bounds() -> None:
    levels = offer_levels(Decimal(20), Decimal(5))
    assert [v.name for v in levels] == [
        "5%@1x",
        "5%@1.5x",
        "10%@1x",
        "10%@1.5x",
        "20%@1x",
        "20%@1.5x",
    ]
    assert all(Decimal(5) <= v.generosity_pct <= Decimal(20) for v in levels)
    assert all(v.threshold(Decimal(8)) >= Decimal(8) for v in levels)
    # No floor set: a quarter of the campaign's generosity; never above it.
    assert {v.generosity_pct for v in offer_levels(Decimal(10), None)} == {
        Decimal("2.5"),
        Decimal("5.0"),
        Decimal(10),
    }
    assert [v.threshold_factor for v in offer_levels(Decimal(10), None, with_threshold=False)] == [
        Decimal(1)
    ] * 3


def test_exploration_shows_each_level_as_often_as_its_logged_propensity() -> None:
    levels = offer_levels(Decimal(20), Decimal(5))
    chosen = levels[4]
    offers = [
        explore(
            chosen,
            levels,
            0.2,
            campaign_id="c1",
            retailer_id="r1",
            shopper_id=f"s{i}",
            period="2027-W01",
        )
        for i in range(30_000)
    ]
    counts = Counter(o.level for o in offers)
    for level in levels:
        propensities = {o.propensity for o in offers if o.level == level}
        assert len(propensities) == 1
        (p,) = propensities
        expected = 0.2 / 6 + (0.8 if level == chosen else 0.0)
        assert p == pytest.approx(expected)
        share = counts[level] / len(offers)
        assert abs(share - p) < 4 * (p * (1 - p) / len(offers)) ** 0.5
    again = explore(
        chosen, levels, 0.2, campaign_id="c1", retailer_id="r1", shopper_id="s7", period="2027-W01"
    )
    assert again == offers[7]  # the same shopper sees the same offer all week
    assert explore(
        chosen, levels, 0.0, campaign_id="c1", retailer_id="r1", shopper_id="s7", period="x"
    ).propensity == pytest.approx(1.0)


def test_the_budget_lowers_the_levels_until_the_expected_discount_fits() -> None:
    rng = np.random.default_rng(1)
    uplift = np.sort(rng.uniform(0, 10, (500, 3)), axis=1)  # more generous: more uplift
    cost = np.tile(np.array([0.2, 1.0, 3.0]), (500, 1))
    free = choose(uplift, cost, margin=0.5)
    # Net of the discount: 0.5 x 8 - 3 pays, 0.5 x 4 - 3 does not (the least level, -0.2).
    hand = choose(np.array([[0.0, 1.0, 8.0], [0.0, 1.0, 4.0]]), cost[:2], margin=0.5)
    assert hand.level.tolist() == [2, 0]
    assert free.budget_multiplier == 0.0
    tight = choose(uplift, cost, margin=0.5, budget=free.expected_discount / 3)
    assert tight.budget_multiplier > 0
    assert tight.expected_discount <= free.expected_discount / 3
    assert tight.expected_gain < free.expected_gain


def _logs(n: int, seed: int) -> OfferLogs:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 2))
    arm = rng.choice([CONTROL, 0, 1], size=n)
    sales = 5 + features[:, 0] + np.where(arm == 1, 2.0, 0.0) + rng.normal(size=n)
    return OfferLogs(
        features,
        arm.astype(np.int64),
        np.where(arm == CONTROL, 1.0, 0.5),
        arm != CONTROL,
        sales,
        np.where(arm == 1, 0.1 * sales, 0.05 * sales * (arm == 0)),
    )


def test_the_gate_refuses_a_policy_no_better_than_the_one_in_force() -> None:
    levels = (OfferLevel(generosity_pct=Decimal(5)), OfferLevel(generosity_pct=Decimal(10)))
    model = UpliftModel.fit(_logs(4_000, 1), levels)
    held = _logs(4_000, 2)
    same = np.zeros(len(held), dtype=np.int64)
    assert not gate(held, same, same, model, margin=0.3)["gate_passed"]
    # Level 1 adds 2.0 of sales for 0.1 x sales of discount: at a 30 % margin it pays
    # (0.6 - ~0.35 more discount), and the gate sees it.
    better = np.ones(len(held), dtype=np.int64)
    verdict = gate(held, better, same, model, margin=0.3)
    assert verdict["gate_passed"], verdict
    assert not gate(held, same, better, model, margin=0.3)["gate_passed"]


@pytest.mark.parametrize("seed", [11, 12])
def test_the_learnt_policy_pays_more_per_euro_of_discount(seed: int) -> None:
    """A small ``make bench-policy``: 8,000 shoppers, 3 learning weeks."""
    result = trial(seed, OfferShape(shoppers=8_000, learning_weeks=3))
    learnt, uniform, rules = (result.runs[p] for p in ("learnt", "uniform", "rules"))
    assert result.published_weeks, result.gates
    assert learnt.per_euro >= 1.3 * uniform.per_euro, (learnt, uniform)
    assert learnt.per_euro > rules.per_euro
    # Its objective: incremental margin net of the discount, within the same budget.
    assert learnt.net_margin(0.3) > max(uniform.net_margin(0.3), rules.net_margin(0.3))
    # Shoppers who buy anyway get the least generosity, at the raised threshold.
    sure = result.chosen_by_kind["sure"]
    assert sure["5%@1x"] + sure["5%@1.5x"] > 0.8, sure
    # The offline estimate's interval covers the policy's true value on the same rows.
    offline = result.offline
    assert offline["low"] <= offline["truth"] <= offline["high"], offline
    assert max(result.qini.values()) > 0


def test_the_decision_shows_the_explored_level_and_records_its_propensity() -> None:
    """The engine draws the level per shopper and week, shows its generosity and
    threshold, and the decision's read-model row carries the offer (policy, level, who
    chose it, propensity)."""
    from datetime import timedelta

    from shared.decisions.compiler import compile_default_tree
    from shared.decisions.engine import decide
    from shared.decisions.read_models import rows_for_decision
    from shared.decisions.trees import ShopperState
    from tests.unit.test_decisions import KEY, T0, add
    from tests.unit.test_tree_compiler import campaign

    promo = campaign(
        "a", generosity_pct=Decimal(20), generosity_min_pct=Decimal(5), explore_share=0.3
    )
    tree = compile_default_tree("r1", [promo], T0)
    rows = []
    for i in range(600):
        event = add("p1", 1, "3.00", 10, brand="brand-a").model_copy(update={"shopper_id": f"s{i}"})
        _, decision = decide(tree, ShopperState(), "r1", event, signing_key=KEY)
        assert decision is not None
        shown = {s.experience_id: s.details for s in decision.shown}
        details = shown["a:promotion"]
        # The campaign's tension cart counts towards the threshold of the level shown.
        assert shown["a:tension"]["threshold"] == details["threshold"]
        offer = details["offer"]
        generosity, factor = offer["level"].rstrip("x").split("%@")
        assert details["generosity_pct"] == generosity
        assert Decimal(details["threshold"]) == Decimal(10) * Decimal(factor)
        (row,) = [
            r
            for r in rows_for_decision(decision)["decision_experiences"]
            if r["experience_id"] == "a:promotion"
        ]
        assert row["offer_policy"] == "campaign" and row["offer_level"] == offer["level"]
        assert row["offer_policy_level"] == "20%@1x"
        assert OfferLevel.parse(offer["level"]).name == offer["level"]
        rows.append(row)
        # The same shopper, later the same week: the same level; never outside the bounds.
        later = event.model_copy(update={"occurred_at": T0 + timedelta(days=1)})
        _, again = decide(tree, ShopperState(), "r1", later, signing_key=KEY)
        assert again is not None
        assert again.shown[0].details["offer"]["level"] == offer["level"]
    explored = [r for r in rows if r["offer_chosen_by"] == "explore"]
    assert 0.2 < len(explored) / len(rows) < 0.4
    assert {r["offer_level"] for r in explored} == {
        v.name for v in offer_levels(Decimal(20), Decimal(5))
    }
    for r in rows:
        chosen = r["offer_level"] == "20%@1x"
        assert r["offer_propensity"] == pytest.approx(0.3 / 6 + (0.7 if chosen else 0), abs=1e-6)
        assert (r["offer_chosen_by"] == "policy") <= chosen


def test_a_campaign_budget_lowers_the_learnt_levels_until_its_weekly_discount_fits() -> None:
    """The nightly's budget multiplier: the expected discount of last week's offered
    shoppers, at the learnt levels, within the budget spread over the weeks left."""
    from datetime import UTC, datetime, timedelta

    from shared.campaigns.model import Campaign
    from shared.nightly.offers import budget_multiplier
    from shared.offers.learning import OfferPolicy

    levels = (OfferLevel(generosity_pct=Decimal(5)), OfferLevel(generosity_pct=Decimal(10)))
    logs = _logs(4_000, 1)
    policy = OfferPolicy(UpliftModel.fit(logs, levels), margin=0.3)
    rows = [
        {"campaign_id": "c", "week": 2900 + i % 2, "outcome": "held_out" if a < 0 else "shown"}
        for i, a in enumerate(logs.arm)
    ]
    now = datetime(2026, 11, 30, tzinfo=UTC)

    def campaign(budget: str | None) -> Campaign:
        return Campaign(
            campaign_id="c",
            name="c",
            retailer_ids=["r"],
            experience_type="personalized_promotion",
            status="active",
            starts_at=now - timedelta(weeks=4),
            ends_at=now + timedelta(weeks=2),
            targeted_product_ids=["p"],
            generosity_pct=Decimal(10),
            generosity_min_pct=Decimal(5),
            budget=Decimal(budget) if budget else None,
        )

    bounds = [levels] * len(rows)
    assert budget_multiplier(policy, rows, logs, levels, bounds, campaign(None), now) is None
    ample = budget_multiplier(policy, rows, logs, levels, bounds, campaign("1000000"), now)
    assert ample == 0.0
    offered = [i for i, r in enumerate(rows) if r["week"] == 2901 and r["outcome"] == "shown"]
    tight = budget_multiplier(policy, rows, logs, levels, bounds, campaign("800"), now)
    assert tight is not None and tight > 0
    free = policy.levels_for(logs.features[offered])
    held = policy.levels_for(logs.features[offered], multipliers=np.full(len(offered), tight))
    _, cost = policy.model.predict(logs.features[offered])
    spent = cost[np.arange(len(offered)), held].sum()
    free_spent = cost[np.arange(len(offered)), free].sum()
    assert spent <= 800 / 2 + 1e-6 < free_spent, (spent, free_spent)  # two weeks left
    assert (held == 0).sum() > (free == 0).sum()
