from __future__ import annotations

from shared.platform.ttl_cache import TtlCache


def test_values_and_misses_are_cached_until_the_ttl_then_reloaded() -> None:
    now = [0.0]
    loads: list[str] = []

    def load(key: str) -> str | None:
        loads.append(key)
        return None if key == "missing" else key.upper()

    cache: TtlCache[str | None] = TtlCache(60, clock=lambda: now[0])
    assert cache.get("a", load) == "A"
    assert cache.get("missing", load) is None
    assert cache.get("a", load) == "A" and cache.get("missing", load) is None
    assert loads == ["a", "missing"]
    now[0] = 61
    assert cache.get("a", load) == "A"
    cache.forget("missing")
    assert cache.get("missing", load) is None
    assert loads == ["a", "missing", "a", "missing"]


def test_a_flood_of_unknown_keys_is_bounded_and_keeps_the_recent_ones() -> None:
    cache: TtlCache[str | None] = TtlCache(60, max_entries=100)
    for n in range(10_000):
        cache.get(f"unknown-{n}", lambda key: None)
    assert len(cache) == 100
    loads: list[str] = []
    assert cache.get("unknown-9999", lambda key: loads.append(key)) is None
    assert loads == []  # the latest are still cached
