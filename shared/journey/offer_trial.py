"""Does the learnt offer policy pay? A simulation where the truth is known.

A population of shoppers of one personalized promotion (generosity 5 .. 20 %, threshold
8.00 on the targeted products), with heterogeneous effects decided up front, each shopper
one of four kinds the code under test never sees:

- ``sure``: buys the targeted products most weeks, offer or not (every discount is cost);
- ``small``: responds to any discount (the least level is enough);
- ``large``: responds only to a large discount (at least 15 %);
- ``never``: does not respond.

A responder who responds adds ``extra`` to the week's targeted sales; a raised threshold
(1.5x) draws a larger top-up (1.4x) from fewer of them (0.85x the chance). The discount
paid is the generosity times the week's targeted sales when they reach the threshold.

What the learner sees is behaviour only, from eight weeks before the trial: the share of
weeks with a targeted purchase, the mean weekly targeted sales, the share of spend bought
on promotion, visits per week (each a noisy signal of the kind).

The feedback loop (``run``): each week every shopper outside the control group is offered
the level of the policy in force, with a share explored uniformly over the levels and its
propensity logged (``shared.offers.levels.explore``), while the weekly budget lasts
(shoppers arrive in a random order; once the budget is spent the offer is withheld, as the
engine's budget gate does). After each week the nightly learns from all weeks so far on
the training shoppers (``UpliftModel``), chooses a policy under the budget, and publishes
it only if it beats the policy in force on the held-out shoppers' logs (``gate``).
Then, on one more week and the same shoppers with the same random draws, the learnt
policy, the uniform policy (every shopper the campaign's generosity) and today's rules
(``shared.decisions.compiler.personal_generosity``: halved for a shopper who buys anyway)
are each run, and their true incremental sales and discount compared. The offline
estimate of the learnt policy's value (doubly robust, from the last learning week's
held-out logs) is set beside its true value on the same rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from shared.campaigns.model import Campaign
from shared.decisions.compiler import PersonalRules, ScoredProduct, personal_generosity
from shared.offers.learning import (
    CONTROL,
    OfferLogs,
    OfferPolicy,
    UpliftModel,
    choose,
    gate,
    policy_value,
    qini,
)
from shared.offers.levels import OfferLevel, explore, offer_levels

KINDS = ("sure", "small", "large", "never")
FEATURES = ("targeted_weeks_share", "targeted_weekly_sales", "promotion_share", "visits")
HISTORY_WEEKS = 8


@dataclass(frozen=True)
class OfferShape:
    """The population, the campaign and the loop of one trial."""

    shoppers: int = 20_000
    kind_shares: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)
    generosity_pct: Decimal = Decimal(20)
    generosity_min_pct: Decimal = Decimal(5)
    threshold: Decimal = Decimal(8)
    large_needs_pct: float = 15.0
    respond: float = 0.6
    raised_respond: float = 0.85  # the chance of responding, times this, at a raised threshold
    raised_extra: float = 1.4  # what a responder adds, times this, at a raised threshold
    margin: float = 0.3  # the retailer's margin on incremental targeted sales
    control_share: float = 0.1
    explore_share: float = 0.1
    budget_per_shopper: float = 0.8  # the weekly budget, per shopper outside the control group
    learning_weeks: int = 4
    held_out_share: float = 0.3  # shoppers whose logs judge a new policy (the gate)


@dataclass(frozen=True)
class Population:
    features: NDArray[np.float64]
    kind: NDArray[np.int64]
    buys: NDArray[np.float64]  # weekly chance of buying the targeted products
    base: NDArray[np.float64]  # mean targeted sales when buying
    needs: NDArray[np.float64]  # the generosity that makes them respond (inf: never)
    extra: NDArray[np.float64]
    held: NDArray[np.bool_]  # the campaign's control group
    judge: NDArray[np.bool_]  # held-out shoppers of the gate (not learnt from)
    habitual: NDArray[np.bool_]  # bought in 6 of the 8 weeks: the ranker expects it


def _hash_share(*parts: object) -> float:
    digest = hashlib.sha256("#".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def population(seed: int, shape: OfferShape) -> Population:
    rng = np.random.default_rng(seed)
    n = shape.shoppers
    kind = rng.choice(4, size=n, p=np.array(shape.kind_shares))
    buys = np.choose(kind, [0.9, 0.45, 0.45, 0.35]) * rng.uniform(0.8, 1.1, n)
    buys = np.clip(buys, 0.05, 0.98)
    base = np.choose(kind, [14.0, 4.0, 4.0, 3.5]) * rng.lognormal(0.0, 0.35, n)
    needs = np.choose(
        kind, [np.inf, float(shape.generosity_min_pct), shape.large_needs_pct, np.inf]
    )
    extra = np.choose(kind, [0.0, 7.0, 9.0, 0.0]) * rng.lognormal(0.0, 0.3, n)
    promotion = np.where(
        kind == 1,
        rng.beta(5, 2, n),
        np.where(kind == 2, rng.beta(3, 3, n), rng.beta(1.5, 5, n)),
    )
    visits = rng.poisson(np.choose(kind, [1.6, 1.2, 1.2, 1.0])) + 1.0
    weeks = rng.random((n, HISTORY_WEEKS)) < buys[:, None]
    sales = weeks * base[:, None] * rng.lognormal(-0.125, 0.5, (n, HISTORY_WEEKS))
    features = np.column_stack([weeks.mean(axis=1), sales.mean(axis=1), promotion, visits]).astype(
        np.float64
    )
    shoppers = [f"s{seed}-{i}" for i in range(n)]
    held = np.array([_hash_share("control", s) < shape.control_share for s in shoppers])
    judge = np.array([_hash_share("judge", s) < shape.held_out_share for s in shoppers])
    return Population(
        features,
        kind.astype(np.int64),
        buys,
        base,
        needs,
        extra,
        held,
        judge,
        weeks.sum(axis=1) >= 6,
    )


@dataclass(frozen=True)
class Week:
    """One week's random draws, shared by every policy run on it (common random numbers)."""

    baseline: NDArray[np.float64]  # targeted sales without any offer
    response: NDArray[np.float64]  # uniform draw: responds when below the chance
    arrival: NDArray[np.int64]  # the order shoppers arrive in (the budget's order)


def week(seed: int, number: int, people: Population) -> Week:
    rng = np.random.default_rng([seed, number])
    n = len(people.kind)
    bought = rng.random(n) < people.buys
    baseline = bought * people.base * rng.lognormal(-0.125, 0.5, n)
    return Week(baseline, rng.random(n), rng.permutation(n).astype(np.int64))


def outcome(
    people: Population,
    draws: Week,
    levels: tuple[OfferLevel, ...],
    arm: NDArray[np.int64],
    shape: OfferShape,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(targeted sales, discount) of each shopper offered level ``arm`` (CONTROL: none)."""
    generosity = np.array([float(v.generosity_pct) for v in levels])
    factor = np.array([float(v.threshold_factor) for v in levels])
    offered = arm != CONTROL
    k = np.where(offered, arm, 0)
    raised = offered & (factor[k] > 1)
    chance = shape.respond * np.where(raised, shape.raised_respond, 1.0)
    responds = offered & (generosity[k] >= people.needs) & (draws.response < chance)
    added = np.where(responds, people.extra * np.where(raised, shape.raised_extra, 1.0), 0.0)
    sales = draws.baseline + added
    threshold = float(shape.threshold) * factor[k]
    discount = np.where(offered & (sales >= threshold), generosity[k] / 100 * sales, 0.0)
    return sales, discount


@dataclass
class PolicyRun:
    """A policy run on one week: what it truly changed and cost."""

    name: str
    offered: int
    incremental_sales: float
    discount: float
    shares: dict[str, float] = field(default_factory=dict)

    def net_margin(self, margin: float) -> float:
        """The policy's objective: margin on the incremental sales, minus the discount."""
        return margin * self.incremental_sales - self.discount

    @property
    def per_euro(self) -> float:
        return self.incremental_sales / self.discount if self.discount else float("nan")


def run_week(
    people: Population,
    draws: Week,
    levels: tuple[OfferLevel, ...],
    chosen: NDArray[np.int64],
    shape: OfferShape,
    *,
    seed: int,
    number: int,
    explore_share: float,
) -> tuple[OfferLogs, NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """The week under ``chosen`` (a level per shopper) with exploration and the budget.
    Returns the logs (offered and held-out shoppers) and, per shopper, the arm shown
    (CONTROL: none), the sales and the discount."""
    n = len(chosen)
    shown = np.full(n, CONTROL, dtype=np.int64)
    propensity = np.ones(n)
    explored = np.zeros(n, dtype=bool)
    for i in range(n):
        if people.held[i]:
            continue
        offer = explore(
            levels[chosen[i]],
            levels,
            explore_share,
            campaign_id="c-offer",
            retailer_id=f"r{seed}",
            shopper_id=str(i),
            period=str(number),
        )
        shown[i] = levels.index(offer.level)
        propensity[i] = offer.propensity
        explored[i] = offer.chosen_by == "explore"
    sales, discount = outcome(people, draws, levels, shown, shape)
    # The budget: in arrival order, an offer is withheld once the week's budget is spent.
    budget = shape.budget_per_shopper * int((~people.held).sum())
    order = draws.arrival
    spent_before = np.concatenate([[0.0], np.cumsum(discount[order])[:-1]])
    withheld = np.zeros(n, dtype=bool)
    withheld[order] = (spent_before >= budget) & (shown[order] != CONTROL)
    shown = np.where(withheld, CONTROL, shown)
    sales = np.where(withheld, draws.baseline, sales)
    discount = np.where(withheld, 0.0, discount)
    logged = people.held | ~withheld
    logs = OfferLogs(
        people.features[logged],
        shown[logged],
        propensity[logged],
        explored[logged],
        sales[logged],
        discount[logged],
    )
    return logs, shown, sales, discount


class RulesPolicy:
    """Today's rules, by the compiler's own function: the campaign's generosity, halved
    (not below its least) for a shopper the ranker expects to buy it anyway (a targeted
    purchase in 6 of the 8 weeks); the threshold is the campaign's."""

    def __init__(self, levels: tuple[OfferLevel, ...], shape: OfferShape) -> None:
        now = datetime(2027, 1, 4, tzinfo=UTC)
        campaign = Campaign(
            campaign_id="c-offer",
            name="offer",
            retailer_ids=["r"],
            experience_type="personalized_promotion",
            status="active",
            starts_at=now,
            ends_at=now + timedelta(days=28),
            targeted_product_ids=["p"],
            generosity_pct=shape.generosity_pct,
            generosity_min_pct=shape.generosity_min_pct,
            threshold=shape.threshold,
        )
        rules = PersonalRules()
        self.habitual = _nearest(
            levels, personal_generosity(campaign, [ScoredProduct("p", 1, 1.0)], rules)
        )
        self.usual = _nearest(levels, personal_generosity(campaign, [], rules))

    def levels_for(self, features: NDArray[np.float64]) -> NDArray[np.int64]:
        habitual = features[:, 0] >= 6 / HISTORY_WEEKS
        return np.where(habitual, self.habitual, self.usual).astype(np.int64)


class UniformPolicy:
    """Every shopper the campaign's generosity at the campaign's threshold."""

    def __init__(self, levels: tuple[OfferLevel, ...], shape: OfferShape) -> None:
        self.full = _nearest(levels, shape.generosity_pct)

    def levels_for(self, features: NDArray[np.float64]) -> NDArray[np.int64]:
        return np.full(len(features), self.full, dtype=np.int64)


def _nearest(levels: tuple[OfferLevel, ...], generosity: Decimal) -> int:
    at_campaign = [i for i, v in enumerate(levels) if v.threshold_factor == 1]
    return min(at_campaign, key=lambda i: abs(levels[i].generosity_pct - generosity))


class Policy(Protocol):
    def levels_for(self, features: NDArray[np.float64]) -> NDArray[np.int64]: ...


@dataclass
class TrialResult:
    seed: int
    runs: dict[str, PolicyRun]
    published_weeks: list[int]
    gates: list[dict[str, Any]]
    qini: dict[str, float]
    offline: dict[str, float]
    chosen_by_kind: dict[str, dict[str, float]]


def trial(seed: int, shape: OfferShape = OfferShape()) -> TrialResult:
    """The feedback loop over ``shape.learning_weeks``, then the evaluation week."""
    people = population(seed, shape)
    levels = offer_levels(shape.generosity_pct, shape.generosity_min_pct)
    budget = shape.budget_per_shopper * int((~people.held).sum())
    in_force: Policy = RulesPolicy(levels, shape)
    learnt: OfferPolicy | None = None
    history: list[OfferLogs] = []
    judges: list[NDArray[np.bool_]] = []
    published: list[int] = []
    gates: list[dict[str, Any]] = []
    last: tuple[OfferLogs, NDArray[np.bool_], int] | None = None
    for number in range(1, shape.learning_weeks + 1):
        draws = week(seed, number, people)
        logs, shown, _, _ = run_week(
            people,
            draws,
            levels,
            in_force.levels_for(people.features),
            shape,
            seed=seed,
            number=number,
            explore_share=shape.explore_share,
        )
        logged = people.held | (shown != CONTROL)
        history.append(logs)
        judges.append(people.judge[logged])
        all_logs, all_judge = OfferLogs.concat(history), np.concatenate(judges)
        model = UpliftModel.fit(all_logs.take(~all_judge), levels)
        offered = people.features[~people.held]
        uplift, cost = model.predict(offered)
        fitted = choose(uplift, cost, margin=shape.margin, budget=budget)
        candidate = OfferPolicy(model, shape.margin, fitted.budget_multiplier)
        judged = all_logs.take(all_judge)
        verdict = gate(
            judged,
            candidate.levels_for(judged.features),
            in_force.levels_for(judged.features),
            model,
            margin=shape.margin,
        )
        gates.append({"week": number, **verdict})
        if verdict["gate_passed"]:
            in_force = learnt = candidate
            published.append(number)
            last = (logs, people.judge[logged], number)
    # The evaluation week: every policy on the same shoppers and draws.
    number = shape.learning_weeks + 1
    draws = week(seed, number, people)
    runs: dict[str, PolicyRun] = {}
    candidates: dict[str, tuple[Policy, float]] = {
        "learnt": (in_force, shape.explore_share),
        "uniform": (UniformPolicy(levels, shape), 0.0),
        "rules": (RulesPolicy(levels, shape), 0.0),
    }
    for name, (policy, share) in candidates.items():
        _, shown, sales, discount = run_week(
            people,
            draws,
            levels,
            policy.levels_for(people.features),
            shape,
            seed=seed,
            number=number,
            explore_share=share,
        )
        offered = shown != CONTROL
        runs[name] = PolicyRun(
            name,
            int(offered.sum()),
            float((sales - draws.baseline)[offered].sum()),
            float(discount.sum()),
            {v.name: float((shown[~people.held] == k).mean()) for k, v in enumerate(levels)},
        )
    offline: dict[str, float] = {}
    scores: dict[str, float] = {}
    if learnt is not None and last is not None:
        logs, judge, number = last
        offline = _offline(people, seed, shape, levels, learnt, logs, judge, number)
        scores = qini(logs.take(judge), learnt.model)
    final = in_force.levels_for(people.features)
    chosen_by_kind = {
        kind: {
            v.name: float((final[(people.kind == i) & ~people.held] == k).mean())
            for k, v in enumerate(levels)
        }
        for i, kind in enumerate(KINDS)
    }
    return TrialResult(seed, runs, published, gates, scores, offline, chosen_by_kind)


def _offline(
    people: Population,
    seed: int,
    shape: OfferShape,
    levels: tuple[OfferLevel, ...],
    policy: OfferPolicy,
    logs: OfferLogs,
    judge: NDArray[np.bool_],
    number: int,
) -> dict[str, float]:
    """The published policy's value estimated from the held-out logs of the week it was
    learnt on (its model never saw those shoppers), against its true value on the same
    rows (the same week's draws, every one of those shoppers offered the policy's level).
    """
    judged = logs.take(judge)
    estimate = policy_value(
        judged, policy.levels_for(judged.features), policy.model, margin=shape.margin
    )
    draws = week(seed, number, people)
    arm = np.where(people.held, CONTROL, policy.levels_for(people.features))
    sales, discount = outcome(people, draws, levels, arm, shape)
    rows = _rows_of(people, judged)
    truth = float((shape.margin * sales[rows] - discount[rows]).mean())
    return {
        "estimate": estimate.value,
        "low": estimate.low,
        "high": estimate.high,
        "truth": truth,
        "rows": float(estimate.rows),
    }


def _rows_of(people: Population, logs: OfferLogs) -> NDArray[np.int64]:
    """The shoppers of the logs' offered rows (a shopper's features are unique)."""
    index = {row.tobytes(): i for i, row in enumerate(people.features)}
    offered = logs.features[logs.arm != CONTROL]
    return np.array([index[row.tobytes()] for row in offered], dtype=np.int64)
