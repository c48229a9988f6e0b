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
