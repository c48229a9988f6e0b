"""The scale bench's calibration: a fixed workload, and per-shopper figures in its units."""

from __future__ import annotations

from typing import Any

from bench import calibration
from bench.nightly_scale import calibrated


def _result(shard_seconds: float, tasks: int, calibration_seconds: list[float]) -> dict[str, Any]:
    return {
        "tasks": tasks,
        "steps": {
            "shards": {
                "seconds": shard_seconds,
                "tasks": [{"scored_shoppers": 5_000}, {"scored_shoppers": 5_000}][:tasks],
                "calibration": [{"seconds": s} for s in calibration_seconds],
            }
        },
    }


def test_a_run_on_a_machine_half_as_fast_reads_the_same_once_calibrated() -> None:
    fast = _result(20.0, 2, [1.0, 1.2])
    slow = _result(40.0, 2, [2.0, 2.4])
    # 20 s x 2 tasks / 10,000 shoppers over a mean calibration of 1.1 s.
    assert calibrated(fast) == 20.0 * 2 / 10_000 / 1.1
    assert calibrated(slow) == calibrated(fast)
    assert calibrated(_result(30.0, 2, [1.0, 1.2])) > calibrated(fast)


def test_the_workload_is_fixed_and_does_the_shard_tasks_work() -> None:
    run = calibration._neighbours_workload()
    first, second = run(), run()
    assert isinstance(first, dict)
    assert len(first) == calibration.BATCH_SHOPPERS
    assert first == second  # the same seeded work each time
    assert all(len(products) == 10 for products in first.values())
    assert len(calibration._python_workload()) == calibration.TREES
