"""Learning each shopper's incremental response to an offer level, choosing the level,
and judging a policy from the logs.

The logs are one row per (shopper, campaign, period): the shopper's behaviour features
(before the period), the arm (``CONTROL`` for a held-out shopper, else the index of the
level shown), the logged propensity of that level, and the outcomes that followed: the
targeted sales in the period and the discount paid.

- ``UpliftModel``: a T-learner on gradient-boosted trees (LightGBM). One model of the
  targeted sales of held-out shoppers (``mu0``), one of offered shoppers with the level as
  a feature (``mu1``: the levels share what they teach about the shopper, and the trees
  split on generosity and threshold where it matters), one of the discount paid. The
  incremental sales of level k for x are ``mu1(x, k) - mu0(x)``.
- ``choose``: per shopper, the level maximizing expected incremental margin minus
  expected discount, under the campaign's budget (a Lagrange multiplier on the discount,
  found by bisection, so the expected discount of the chosen levels fits the budget).
- ``qini``: the uplift model's ranking judged on randomized rows only (explored offers
  against the control group), as a Qini coefficient (above 0: better than random).
- ``policy_value``: a policy's value (net margin per offered row: margin x sales - discount)
  estimated offline from the logs, doubly robust with the logged propensities, with its
  95 % interval; ``gate``: a new policy replaces the current one only when the paired
  difference of their estimates on held-out rows is above zero with 95 % confidence.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray

from shared.offers.levels import OfferLevel

CONTROL = -1
Z95 = 1.959963984540054

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 1.0,
    "num_threads": 2,
    "seed": 8451,
    "deterministic": True,
    "verbose": -1,
}
ROUNDS = 150


@dataclass
class OfferLogs:
    """Logged offers and what followed (arrays of one row per shopper and period)."""

    features: FloatArray  # (n, f): behaviour before the period
    arm: IntArray  # CONTROL, or the index of the level shown
    propensity: FloatArray  # the logged probability of the level shown (1.0 for control)
    explored: NDArray[np.bool_]  # the level was drawn by exploration (uniformly)
    sales: FloatArray  # targeted sales in the period
    discount: FloatArray  # discount paid in the period

    def __len__(self) -> int:
        return len(self.arm)

    def take(self, index: NDArray[Any]) -> OfferLogs:
        return OfferLogs(
            self.features[index],
            self.arm[index],
            self.propensity[index],
            self.explored[index],
            self.sales[index],
            self.discount[index],
        )

    @staticmethod
    def concat(parts: list[OfferLogs]) -> OfferLogs:
        return OfferLogs(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.arm for p in parts]),
            np.concatenate([p.propensity for p in parts]),
            np.concatenate([p.explored for p in parts]),
            np.concatenate([p.sales for p in parts]),
            np.concatenate([p.discount for p in parts]),
        )


def _level_columns(levels: tuple[OfferLevel, ...], arm: IntArray) -> FloatArray:
    table = np.array([[float(v.generosity_pct), float(v.threshold_factor)] for v in levels])
    return np.asarray(table[arm], dtype=np.float64)


def _fit(x: FloatArray, y: FloatArray) -> lgb.Booster:
    return lgb.train(PARAMS, lgb.Dataset(x, label=y), num_boost_round=ROUNDS)


@dataclass
class UpliftModel:
    """The T-learner: ``mu0`` (held out), ``mu1`` (offered, level as features), ``cost``."""

    levels: tuple[OfferLevel, ...]
    mu0: lgb.Booster
    mu1: lgb.Booster
    cost: lgb.Booster

    @classmethod
    def fit(cls, logs: OfferLogs, levels: tuple[OfferLevel, ...]) -> UpliftModel:
        held = logs.arm == CONTROL
        offered = ~held
        if (
            held.sum() < 2 * PARAMS["min_data_in_leaf"]
            or offered.sum() < 2 * PARAMS["min_data_in_leaf"]
        ):
            raise ValueError("too few held-out or offered rows to learn from")
        x1 = np.hstack([logs.features[offered], _level_columns(levels, logs.arm[offered])])
        return cls(
            levels,
            _fit(logs.features[held], logs.sales[held]),
            _fit(x1, logs.sales[offered]),
            _fit(x1, logs.discount[offered]),
        )

    def _at(self, model: lgb.Booster, features: FloatArray) -> FloatArray:
        """(n, levels): the model's prediction for every row at every level."""
        n = len(features)
        out = np.empty((n, len(self.levels)))
        for k in range(len(self.levels)):
            arm = np.full(n, k, dtype=np.int64)
            x = np.hstack([features, _level_columns(self.levels, arm)])
            out[:, k] = model.predict(x)
        return out

    def predict(self, features: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(incremental sales, expected discount), each (n, levels)."""
        base = np.asarray(self.mu0.predict(features), dtype=np.float64)
        sales = self._at(self.mu1, features)
        cost = np.clip(self._at(self.cost, features), 0.0, None)
        return sales - base[:, None], cost

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": [[str(v.generosity_pct), str(v.threshold_factor)] for v in self.levels],
            "mu0": self.mu0.model_to_string(),
            "mu1": self.mu1.model_to_string(),
            "cost": self.cost.model_to_string(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UpliftModel:
        return cls(
            tuple(
                OfferLevel(generosity_pct=Decimal(g), threshold_factor=Decimal(f))
                for g, f in data["levels"]
            ),
            lgb.Booster(model_str=data["mu0"]),
            lgb.Booster(model_str=data["mu1"]),
            lgb.Booster(model_str=data["cost"]),
        )


@dataclass(frozen=True)
class Choice:
    """The level chosen per row, the multiplier that fits the budget, expected totals."""

    level: IntArray
    budget_multiplier: float
    expected_discount: float
    expected_gain: float


def choose(
    uplift: FloatArray,
    cost: FloatArray,
    *,
    margin: float,
    budget: float | None = None,
    allowed: NDArray[np.bool_] | None = None,
) -> Choice:
    """Per row, the level maximizing ``margin * uplift - cost``; with a budget, maximizing
    ``margin * uplift - (1 + lam) * cost`` for the least ``lam >= 0`` whose expected
    discount fits the budget (bisection: the expected discount falls as ``lam`` rises).
    ``allowed`` (rows x levels): only those levels may be chosen."""
    gain = margin * uplift - cost
    if allowed is not None:
        gain = np.where(allowed, gain, -np.inf)

    def pick(lam: float) -> IntArray:
        return np.asarray(np.argmax(gain - lam * cost, axis=1), dtype=np.int64)

    def spent(level: IntArray) -> float:
        return float(cost[np.arange(len(level)), level].sum())

    lam = 0.0
    level = pick(lam)
    if budget is not None and spent(level) > budget:
        low, high = 0.0, 1.0
        while spent(pick(high)) > budget and high < 1e6:
            high *= 2
        for _ in range(40):
            middle = (low + high) / 2
            if spent(pick(middle)) > budget:
                low = middle
            else:
                high = middle
        lam, level = high, pick(high)
    rows = np.arange(len(level))
    return Choice(level, lam, spent(level), float(gain[rows, level].sum()))


@dataclass(frozen=True)
class OfferPolicy:
    """The learnt policy: per shopper, the level maximizing ``margin * uplift - cost
    - budget_multiplier * cost`` under ``model`` (``choose``'s rule, applied to anyone)."""

    model: UpliftModel
    margin: float
    budget_multiplier: float = 0.0
    # Per campaign, the multiplier that keeps its expected weekly discount in its budget.
    campaign_multipliers: dict[str, float] = field(default_factory=dict)

    def levels_for(
        self,
        features: FloatArray,
        allowed: NDArray[np.bool_] | None = None,
        multipliers: FloatArray | None = None,
    ) -> IntArray:
        """The level (index into ``model.levels``) for each row; ``allowed`` (rows x
        levels): the levels within each row's campaign bounds; ``multipliers``: each row's
        budget multiplier (default ``budget_multiplier``)."""
        uplift, cost = self.model.predict(features)
        lam = self.budget_multiplier if multipliers is None else multipliers[:, None]
        score = self.margin * uplift - (1 + lam) * cost
        if allowed is not None:
            score = np.where(allowed, score, -np.inf)
        return np.asarray(np.argmax(score, axis=1), dtype=np.int64)

    def to_json(self) -> str:
        return json.dumps(
            {
                "model": self.model.to_dict(),
                "margin": self.margin,
                "budget_multiplier": self.budget_multiplier,
                "campaign_multipliers": self.campaign_multipliers,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> OfferPolicy:
        data = json.loads(text)
        return cls(
            UpliftModel.from_dict(data["model"]),
            float(data["margin"]),
            float(data["budget_multiplier"]),
            {str(k): float(v) for k, v in data.get("campaign_multipliers", {}).items()},
        )


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    rows: int

    def covers(self, truth: float) -> bool:
        return self.low <= truth <= self.high


def _interval(terms: FloatArray) -> Estimate:
    n = len(terms)
    mean = float(terms.mean()) if n else math.nan
    half = Z95 * float(terms.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return Estimate(mean, mean - half, mean + half, n)


def _dr_terms(logs: OfferLogs, policy: IntArray, model: UpliftModel, margin: float) -> FloatArray:
    """Per offered row: the doubly robust estimate of the policy's net margin."""
    offered = logs.arm != CONTROL
    rows = logs.take(offered)
    chosen = policy[offered]
    base = np.asarray(model.mu0.predict(rows.features), dtype=np.float64)
    uplift, cost = model.predict(rows.features)
    q = margin * (uplift + base[:, None]) - cost
    index = np.arange(len(rows))
    reward = margin * rows.sales - rows.discount
    matched = rows.arm == chosen
    correction = np.where(matched, (reward - q[index, rows.arm]) / rows.propensity, 0.0)
    return np.asarray(q[index, chosen] + correction, dtype=np.float64)


def policy_value(
    logs: OfferLogs, policy: IntArray, model: UpliftModel, *, margin: float
) -> Estimate:
    """The policy's net margin per offered row (``margin * sales - discount``), estimated
    doubly robust from ``logs`` (``policy``: the level it chooses for every row; ``model``
    must not have been fitted on these rows)."""
    return _interval(_dr_terms(logs, policy, model, margin))


def gate(
    logs: OfferLogs,
    new: IntArray,
    current: IntArray,
    model: UpliftModel,
    *,
    margin: float,
) -> dict[str, Any]:
    """Whether ``new`` beats ``current`` on held-out ``logs``: the paired difference of
    their doubly robust values, with its 95 % interval; passed when the interval is above 0."""
    difference = _interval(
        _dr_terms(logs, new, model, margin) - _dr_terms(logs, current, model, margin)
    )
    return {
        "gate_passed": bool(difference.low > 0),
        "difference": difference.value,
        "ci95": [difference.low, difference.high],
        "rows": difference.rows,
    }


def qini(logs: OfferLogs, model: UpliftModel) -> dict[str, float]:
    """Qini coefficient per level, on randomized rows only (explored offers of the level
    against the held-out shoppers): the area between the Qini curve of the model's ranking
    and the random ranking's line, per treated row; above 0 means the model ranks shoppers
    by incremental sales better than chance."""
    result: dict[str, float] = {}
    for k, level in enumerate(model.levels):
        treated = (logs.arm == k) & logs.explored
        held = logs.arm == CONTROL
        rows = logs.take(treated | held)
        if treated.sum() < 20 or held.sum() < 20:
            continue
        uplift, _ = model.predict(rows.features)
        order = np.argsort(-uplift[:, k], kind="stable")
        is_treated = (rows.arm == k)[order]
        sales = rows.sales[order]
        n_t = np.cumsum(is_treated)
        n_c = np.cumsum(~is_treated)
        y_t = np.cumsum(np.where(is_treated, sales, 0.0))
        y_c = np.cumsum(np.where(is_treated, 0.0, sales))
        ratio = np.divide(n_t, n_c, out=np.zeros(len(n_t)), where=n_c > 0)
        curve = y_t - y_c * ratio
        line = curve[-1] * np.arange(1, len(curve) + 1) / len(curve)
        result[level.name] = float((curve - line).mean() / max(n_t[-1], 1))
    return result


@dataclass
class Learnt:
    """What one learning run produces: the model, its Qini, the gate's verdict."""

    model: UpliftModel
    qini: dict[str, float]
    gate: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
