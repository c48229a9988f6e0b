"""The demo report's statistics and renderings (pure; no store)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from shared.demo.report import (
    CampaignUplift,
    DemoFigures,
    aa_verdict,
    compare,
    quantile,
    render_html,
    render_text,
)


def test_welch_difference_by_hand() -> None:
    c = compare([10.0, 12.0, 14.0], [9.0, 11.0])
    assert c.difference == 12.0 - 10.0
    # se = sqrt(var([10,12,14])/3 + var([9,11])/2) = sqrt(4/3 + 2/2)
    se = math.sqrt(4 / 3 + 1)
    assert math.isclose(c.low, 2.0 - 1.959964 * se)
    assert math.isclose(c.high, 2.0 + 1.959964 * se)
    assert c.computable and c.compatible_with_zero


def test_an_interval_away_from_zero_is_not_compatible() -> None:
    c = compare([20.0, 21.0, 22.0, 20.5], [10.0, 11.0, 10.5, 9.5])
    assert c.low > 0 and not c.compatible_with_zero


def test_too_few_shoppers_is_not_computable() -> None:
    c = compare([10.0], [9.0, 8.0])
    assert not c.computable and math.isnan(c.low)


def test_the_interval_covers_a_null_effect_about_95_percent_of_the_time() -> None:
    """The A/A property the demo relies on: with no effect, 95% of intervals contain 0."""
    rng = random.Random(7)
    trials = 2_000
    covered = 0
    for _ in range(trials):
        exposed = [rng.lognormvariate(3.5, 0.8) for _ in range(120)]
        held_out = [rng.lognormvariate(3.5, 0.8) for _ in range(40)]
        covered += compare(exposed, held_out).compatible_with_zero
    # Binomial(2000, 0.95): sd ~ 0.49 points; the normal interval on skewed data with 40
    # held-out shoppers runs a little short of 95%, never far.
    assert 0.92 <= covered / trials <= 0.97, covered / trials


def test_quantile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 51.0  # round(0.5 * 99) = 50 -> the 51st value
    assert quantile(values, 0.95) == 95.0
    assert math.isnan(quantile([], 0.5))


def _figures(campaigns: list[CampaignUplift]) -> DemoFigures:
    since = datetime(2026, 11, 23, 12, tzinfo=UTC)
    return DemoFigures(
        since=since,
        until=since + timedelta(minutes=2),
        ingested_by_type={"page_views": 700, "basket_changes": 300},
        rejected_by_reason={"payload.email: personal_data_refused": 2},
        decisions=1_000,
        latencies_ms=[float(v) for v in range(1, 1001)],
        experiences={"tension_cart": {"shown": 40, "held_out": 4, "frequency_cap": 3}},
        evaluation=[
            {
                "level": "product",
                "target": "next_basket",
                "metric": "recall@10",
                "method": "ranker",
                "value": 0.18,
                "ci_low": 0.17,
                "ci_high": 0.19,
            }
        ],
        gate_passed=True,
        campaigns=campaigns,
        offers={"rules": {"policy": 90, "explore": 10}, "learnt:run-7": {"policy": 50}},
    )


def test_the_verdict_says_plainly_that_no_effect_is_claimed() -> None:
    null = CampaignUplift("c1", "Pasta", "tension_cart", 40, 4, compare([1, 2, 3], [1, 2, 3]))
    away = CampaignUplift("c2", "Sauce", "tension_cart", 40, 4, compare([9, 9.5, 10], [1, 2, 1]))
    verdict = aa_verdict([null, away])
    assert "1 of 2 campaign intervals contain zero" in verdict
    assert "claims no effect" in verdict
    assert "not computable" in aa_verdict(
        [CampaignUplift("c3", "x", "tension_cart", 1, 0, compare([1.0], []))]
    )


def test_renderings_carry_every_section() -> None:
    figures = _figures(
        [CampaignUplift("c1", "Pasta <b>", "tension_cart", 40, 4, compare([1, 2, 3], [2, 3]))]
    )
    text = render_text(figures)
    assert "Events ingested: 1,000  rejected: 2" in text
    assert "p95 950" in text
    assert "tension_cart" in text and "40 /      4 /      3" in text
    page = render_html(figures)
    assert page.count("<svg") == 4  # events, latency, experiences, uplift
    assert "Pasta &lt;b&gt;" in page  # names are escaped
    assert "0.1800" in page and "[0.1700, 0.1900]" in page
    # Which offer policy was in force, and the share of offers explored.
    assert "rules" in text and "100 shown, 10 explored (10%)" in text
    assert "learnt:run-7" in page and "50 shown, 0 explored (0%)" in page
