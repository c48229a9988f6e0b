"""The synthetic population's draw (pure: which household and shift each shopper gets)."""

from __future__ import annotations

from collections import Counter

from bench.nightly_population import population_rows

HOUSEHOLDS = [("freshmart", "hh-1"), ("greenbasket", "hh-2"), ("citygrocer", "hh-3")]


def test_each_shopper_copies_one_household_with_a_small_shift() -> None:
    rows = population_rows(HOUSEHOLDS, 3_000, seed=8451)
    assert [r["j"] for r in rows] == list(range(3_000))
    assert len({r["shopper_id"] for r in rows}) == 3_000
    assert all((r["retailer_id"], r["household_id"]) in HOUSEHOLDS for r in rows)
    drawn = Counter(r["household_id"] for r in rows)
    assert all(800 < n < 1_200 for n in drawn.values())  # with replacement, evenly
    shifts = [r["shift_seconds"] for r in rows]
    assert max(abs(s) for s in shifts) <= 3 * 86_400 + 3_600
    assert len(set(shifts)) > 100


def test_the_draw_is_seeded() -> None:
    assert population_rows(HOUSEHOLDS, 50, seed=1) == population_rows(HOUSEHOLDS, 50, seed=1)
    assert population_rows(HOUSEHOLDS, 50, seed=1) != population_rows(HOUSEHOLDS, 50, seed=2)
