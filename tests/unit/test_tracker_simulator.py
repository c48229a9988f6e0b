"""The Complete Journey as tracker events: valid, deterministic, priced as documented."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.contract.events import validate_event
from shared.journey import dataset as journey
from shared.journey.tracker_simulator import (
    DATA_END,
    RETAILERS,
    Simulation,
    default_shift_weeks,
    price,
    sessions,
)


@pytest.fixture(scope="module")
def week() -> list[journey.Basket]:
    return list(journey.baskets((20, 20), journey.sample_households((20, 20), 150, 1)))


def test_demographics_are_refused_by_name_and_never_opened() -> None:
    with pytest.raises(journey.RefusedDataError):
        journey.table_path("demographics")
    with pytest.raises(journey.RefusedDataError):
        journey.read("demographics", ["household_id"])
    assert journey.table_path("transactions").exists()


def test_every_simulated_event_is_valid_and_sessions_are_realistic(
    week: list[journey.Basket],
) -> None:
    simulated = list(sessions(week, journey.products(), Simulation(shift_weeks=400)))
    events = [e for s in simulated for e in s.events]
    refused = [(e, r) for e in events if isinstance(r := validate_event(e), list)]
    assert refused == []
    kinds = Counter(e["type"] for e in events)
    assert kinds["cart_validated"] == kinds["order_status_changed"] == len(week)
    assert kinds["product_added_to_basket"] >= sum(len(b.lines) for b in week)
    assert {"page_viewed", "search_performed", "product_removed_from_basket"} <= set(kinds)
    for session, basket in zip(simulated, week, strict=True):
        times = [datetime.fromisoformat(e["occurred_at"]) for e in session.events]
        assert times == sorted(times)
        paid = next(e for e in session.events if e["type"] == "cart_validated")
        assert datetime.fromisoformat(paid["occurred_at"]) == basket.at.replace(
            tzinfo=UTC
        ) + timedelta(weeks=400)
        assert len(paid["payload"]["lines"]) == len(basket.lines)
        assert {e["shopper_id"] for e in session.events} == {f"hh-{basket.household_id}"}
        assert session.retailer_id in RETAILERS


def test_the_mapping_is_deterministic_and_the_shift_makes_other_events(
    week: list[journey.Basket],
) -> None:
    products = journey.products()
    once = [s.events for s in sessions(week[:20], products, Simulation(shift_weeks=400))]
    twice = [s.events for s in sessions(week[:20], products, Simulation(shift_weeks=400))]
    other = [s.events for s in sessions(week[:20], products, Simulation(shift_weeks=401))]
    assert once == twice
    ids = {e["event_id"] for events in once for e in events}
    assert ids.isdisjoint({e["event_id"] for events in other for e in events})
    stores = {b.store_id for b in week}
    retailers = {Simulation().retailer_of(store) for store in stores}
    assert retailers == set(RETAILERS)  # a week's stores cover every retailer


def test_nothing_is_sent_before_it_happened() -> None:
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    shift = default_shift_weeks(now)
    assert DATA_END.replace(tzinfo=UTC) + timedelta(weeks=shift) <= now
    assert DATA_END.replace(tzinfo=UTC) + timedelta(weeks=shift + 1) > now
    last = list(journey.baskets((53, 53)))[-5:]
    simulated = sessions(last, journey.products(), Simulation(shift_weeks=shift), not_after=now)
    assert all(datetime.fromisoformat(e["occurred_at"]) <= now for s in simulated for e in s.events)


def test_prices_discounts_and_odd_quantities() -> None:
    product = journey.Product(1, 69, "GROCERY", "National", "SOUP", "CONDENSED SOUP")
    line = journey.Line(
        1, 2, sales_value=3.0, retail_disc=0.5, coupon_disc=0.25, coupon_match_disc=0.0
    )
    priced = price(line, product)
    assert (priced.quantity, priced.unit_price, priced.discount) == (
        2,
        Decimal("1.75"),
        Decimal("0.75"),
    )
    assert (priced.brand, priced.category) == ("MFR-69", "SOUP")
    fuel = price(journey.Line(2, 25_000, 40.0, 0.0, 0.0, 0.0), None)
    assert (fuel.quantity, fuel.unit_price) == (1, Decimal("40.00"))
    free = price(journey.Line(3, 1, 0.0, 0.0, 1.0, 0.0), None)
    assert (free.unit_price, free.discount) == (Decimal("0.00"), Decimal("0.00"))
    private = journey.Product(2, 1, "PRODUCE", "Private", None, None)
    assert price(line, private).brand == "PRIVATE LABEL"
    assert price(line, private).category == "PRODUCE"


def test_event_ids_are_version_5_uuids() -> None:
    import uuid

    from shared.journey.tracker_simulator import _NAMESPACE, name_based_uuid

    for name in ("8451:464:31198570044:0", "x", "1:2:3:40"):
        assert name_based_uuid(name) == str(uuid.uuid5(_NAMESPACE, name))
