from __future__ import annotations

from shared.ingestion.ratelimit import TokenBuckets


def test_bucket_grants_its_rate_and_says_how_long_to_wait() -> None:
    now = [0.0]
    buckets = TokenBuckets(clock=lambda: now[0])
    assert buckets.take("r1", 100, rate_per_s=100) == 0
    assert buckets.take("r1", 50, rate_per_s=100) == 0.5
    assert buckets.take("r2", 100, rate_per_s=100) == 0  # per retailer
    now[0] = 0.5
    assert buckets.take("r1", 50, rate_per_s=100) == 0


def test_a_batch_larger_than_the_burst_is_granted_when_the_bucket_is_full() -> None:
    buckets = TokenBuckets(clock=lambda: 0.0)
    assert buckets.take("r1", 500, rate_per_s=10) == 0
    assert buckets.take("r1", 1, rate_per_s=10) > 0
