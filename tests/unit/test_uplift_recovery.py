"""The campaign report's uplift recovers a known effect, and finds none when there is none.

Pure logic: each run is a seeded trial (``shared/journey/uplift_trial.py``) whose shoppers
respond to a shown personalized promotion through the response model; the uplift is the
report's own function (``shared.campaigns.report.uplifts``) fed the groups of rows shaped
like the read models. Over 40 seeds: the 95% intervals contain the true effect in at least
90% of runs, the injected effect on targeted sales is detected in at least 80%, and with
no response (A/A) the intervals contain zero in at least 90% of runs. The full-size
version is ``make bench-uplift`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.journey.response import BasketLine, ResponseModel
from shared.journey.uplift_trial import run_trials, trial

SEEDS = range(40)


@pytest.fixture(scope="module")
def responding() -> dict[str, Any]:
    return run_trials(SEEDS, ResponseModel())


@pytest.fixture(scope="module")
def not_responding() -> dict[str, Any]:
    return run_trials(SEEDS, ResponseModel.none())


@pytest.mark.parametrize("metric", ["targeted_sales", "basket_value"])
def test_intervals_contain_the_true_effect(responding: dict[str, Any], metric: str) -> None:
    figures = responding["metrics"][metric]
    assert figures["mean_truth"] > 0
    assert figures["coverage"] >= 0.9, figures


def test_the_injected_effect_is_detected(responding: dict[str, Any]) -> None:
    figures = responding["metrics"]["targeted_sales"]
    assert figures["detection"] >= 0.8, figures


@pytest.mark.parametrize("metric", ["targeted_sales", "basket_value"])
def test_without_response_the_intervals_contain_zero(
    not_responding: dict[str, Any], metric: str
) -> None:
    figures = not_responding["metrics"][metric]
    assert figures["mean_truth"] == 0
    assert figures["covers_zero"] >= 0.9, figures
    assert figures["detection"] <= 0.1, figures


def test_held_out_shoppers_are_never_influenced() -> None:
    # The trial's truth has an entry for exposed shoppers only, and a held-out shopper's
    # sales are the same whatever the model (the A/A run is its counterfactual).
    from shared.journey.uplift_trial import TrialShape, group_rows, simulate

    shape = TrialShape(shoppers=400)
    with_response, truth = simulate(7, ResponseModel(seed=7), shape)
    without, _ = simulate(7, ResponseModel.none(seed=7), shape)
    held = {d["shopper_id"] for d in with_response.decisions if d["outcome"] == "held_out"}
    assert held and not held & set(truth.added_targeted)
    sold = [s for s in with_response.sold if s["shopper_id"] in held]
    assert sold == [s for s in without.sold if s["shopper_id"] in held]
    targeted = [str(p) for p in range(shape.targeted)]
    assert (
        group_rows(with_response, targeted)["held_out"] == group_rows(without, targeted)["held_out"]
    )


def test_one_trial_is_reproducible() -> None:
    a, b = trial(3, ResponseModel(seed=3)), trial(3, ResponseModel(seed=3))
    assert a == b


# --- the response model itself ---------------------------------------------------------

BASKET = {
    "p1": BasketLine("p1", 1, Decimal("2.50")),
    "p2": BasketLine("p2", 2, Decimal("4.00")),
}


def _promotion(value: str, threshold: str = "10.00") -> dict[str, Any]:
    return {
        "experience_id": "x-1",
        "campaign_id": "c-1",
        "type": "personalized_promotion",
        "details": {
            "in_basket": ["p1"],
            "basket_value": value,
            "threshold": threshold,
            "unlocked": float(value) >= float(threshold),
        },
    }


def test_a_promotion_within_reach_is_answered_more_often() -> None:
    model = ResponseModel(promo_add=0.1, promo_add_within_reach=0.9, click=0.0)
    far = sum(
        model.respond(f"s{i}", _promotion("2.50"), BASKET).addition is not None for i in range(2000)
    )
    near = sum(
        model.respond(f"s{i}", _promotion("8.50"), BASKET).addition is not None for i in range(2000)
    )
    assert 100 < far < 300 and 1700 < near < 1900
    reaction = next(
        r for i in range(50) if (r := model.respond(f"s{i}", _promotion("8.50"), BASKET)).addition
    )
    assert reaction.addition is not None
    assert reaction.addition.line.product_id == "p1" and reaction.addition.line.quantity == 1
    assert reaction.addition.campaign_id == "c-1"


def test_a_close_tension_cart_is_filled_with_the_missing_amount() -> None:
    model = ResponseModel(tension_fill=1.0)
    cart: dict[str, Any] = {
        "experience_id": "x-2",
        "campaign_id": "c-2",
        "type": "tension_cart",
        "details": {"threshold": "30.00", "missing": "7.00", "unlocked": False},
    }
    reaction = model.respond("s", cart, BASKET, last_added="p2")
    assert reaction.addition is not None
    assert reaction.addition.line.product_id == "p2" and reaction.addition.line.quantity == 2
    far = {**cart, "details": {**cart["details"], "missing": "20.00"}}
    assert model.respond("s", far, BASKET, last_added="p2").addition is None


def test_no_response_model_never_reacts() -> None:
    model = ResponseModel.none()
    for i in range(200):
        reaction = model.respond(f"s{i}", _promotion("9.00"), BASKET)
        assert not reaction.clicked and reaction.addition is None
        assert not model.plays(f"s{i}", {"experience_id": "x", "type": "gamified_promotion"})
