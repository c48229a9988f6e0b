"""How ``stream`` cuts a result into slices of a column's values (``value_slices``)."""

from __future__ import annotations

import itertools

import pytest

from shared.platform.bigquery_warehouse import value_slices


def test_slices_cover_every_value_once_in_order_within_the_bound() -> None:
    counts = [(v, 300) for v in range(0, 1024, 3)]
    slices = value_slices(counts, 2_000)
    covered = [v for v, _ in counts if any(low <= v <= high for low, high in slices)]
    assert covered == [v for v, _ in counts]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(slices))  # disjoint
    held = [sum(n for v, n in counts if low <= v <= high) for low, high in slices]
    assert all(h <= 2_000 for h in held)
    assert all(h == 1_800 for h in held[:-1])  # six values of 300, the seventh overflows


def test_a_value_holding_more_than_the_bound_is_a_slice_of_its_own() -> None:
    assert value_slices([(0, 10), (1, 5_000), (2, 10), (3, 10)], 100) == [
        (0, 0),
        (1, 1),
        (2, 3),
    ]


@pytest.mark.parametrize("counts", [[], [(7, 1)]])
def test_small_results(counts: list[tuple[int, int]]) -> None:
    assert value_slices(counts, 2_000) == ([(7, 7)] if counts else [])
