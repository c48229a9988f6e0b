"""The purge's time-ordered index of events: keys sort in time order per retailer, and
the range a purge reads holds every older hour, the cut-off's own, and nothing later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from shared.ingestion.event_hours import event_hour_key, hour_bucket, id_key_of, older_range

EVENT_ID = "0b5d6f3e-9a51-4c7e-8d0a-1f2e3d4c5b6a"
CUTOFF = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)


def inside(key: str, key_range: tuple[str, str]) -> bool:
    start, end = key_range
    return start <= key < end


def test_the_hour_is_utc_and_sorts_in_time_order() -> None:
    paris = timezone(timedelta(hours=1))
    assert hour_bucket(datetime(2026, 3, 10, 15, 59, tzinfo=paris)) == "2026031014"
    moments = [CUTOFF + timedelta(hours=h) for h in (-30_000, -25, -1, 0, 1, 9, 24, 900)]
    assert sorted(moments, key=hour_bucket) == moments


def test_an_index_row_names_its_event_ids_row_and_no_shopper() -> None:
    key = event_hour_key(f"shop-1#{EVENT_ID}", CUTOFF)
    assert key == f"shop-1#2026031014#{EVENT_ID}"
    assert id_key_of(key) == f"shop-1#{EVENT_ID}"


def test_the_purge_range_holds_older_hours_and_the_cutoffs_own_only() -> None:
    key_range = older_range("shop-1", CUTOFF)

    def key(moment: datetime, retailer: str = "shop-1") -> str:
        return event_hour_key(f"{retailer}#{EVENT_ID}", moment)

    for older in (timedelta(days=900), timedelta(hours=1), timedelta(minutes=1)):
        assert inside(key(CUTOFF - older), key_range)
    # The cut-off's own hour is read (its younger cells are filtered out by time) ...
    assert inside(key(CUTOFF + timedelta(minutes=29)), key_range)
    # ... and no later hour, nor another retailer's (even one whose id extends this one).
    assert not inside(key(CUTOFF + timedelta(minutes=30)), key_range)
    assert not inside(key(CUTOFF + timedelta(days=2)), key_range)
    assert not inside(key(CUTOFF - timedelta(days=9), "shop-10"), key_range)
    assert not inside(key(CUTOFF - timedelta(days=9), "shop-"), key_range)
