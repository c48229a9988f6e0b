"""Does the campaign report's uplift recover a known effect? The full-size check.

The in-suite test (``tests/unit/test_uplift_recovery.py``) runs 40 seeded trials of 6,000
shoppers; this runs ``--seeds`` trials (default 200) of the same shape, with the response
model's default effects and with no response (A/A), then ``--big-seeds`` trials of
``--big-shoppers`` shoppers (the size at which the smaller basket-value effect is
detected). Per metric: coverage of the truth by the 95% interval, coverage of zero,
detection (interval excluding zero), mean truth, mean measured, mean bias and its
standard error, mean half-width. The estimator is the report's own
(``shared.campaigns.report.uplifts``); the trials are ``shared/journey/uplift_trial.py``.
No stack: pure logic (the end-to-end run is ``make demo``'s true-versus-measured table).

    python -m bench.uplift --seeds 200 --json .local/bench/uplift.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.journey.response import ResponseModel
from shared.journey.uplift_trial import TrialShape, trial


def _figures(results: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": len(results)}
    for metric in ("targeted_sales", "basket_value"):
        bias = [r.measured[metric]["difference"] - r.truth[metric] for r in results]
        out[metric] = {
            "coverage": round(sum(r.covers(metric) for r in results) / len(results), 3),
            "covers_zero": round(sum(r.covers(metric, 0.0) for r in results) / len(results), 3),
            "detection": round(sum(r.detects(metric) for r in results) / len(results), 3),
            "mean_truth": round(statistics.fmean(r.truth[metric] for r in results), 4),
            "mean_measured": round(
                statistics.fmean(r.measured[metric]["difference"] for r in results), 4
            ),
            "mean_bias": round(statistics.fmean(bias), 4),
            "bias_se": round(statistics.stdev(bias) / len(bias) ** 0.5, 4),
            "mean_half_width": round(
                statistics.fmean(
                    (r.measured[metric]["ci95"][1] - r.measured[metric]["ci95"][0]) / 2
                    for r in results
                ),
                4,
            ),
        }
    return out


def _run(name: str, seeds: range, model: ResponseModel, shape: TrialShape) -> dict[str, Any]:
    started = time.monotonic()
    results = [trial(seed, replace(model, seed=seed), shape) for seed in seeds]
    figures = {"name": name, "shoppers": shape.shoppers, **_figures(results)}
    figures["seconds"] = round(time.monotonic() - started, 1)
    for metric in ("targeted_sales", "basket_value"):
        f = figures[metric]
        print(
            f"{name:<22} {shape.shoppers:>6,} shoppers x {len(seeds):>3} runs  {metric:<15}"
            f" coverage {f['coverage']:.3f}  zero in CI {f['covers_zero']:.3f}  detected "
            f"{f['detection']:.3f}  truth {f['mean_truth']:+.3f}  measured "
            f"{f['mean_measured']:+.3f}  bias {f['mean_bias']:+.3f} (se {f['bias_se']:.3f})  "
            f"half-width {f['mean_half_width']:.3f}",
            flush=True,
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--shoppers", type=int, default=TrialShape().shoppers)
    parser.add_argument("--big-seeds", type=int, default=40)
    parser.add_argument("--big-shoppers", type=int, default=30_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    shape = TrialShape(shoppers=args.shoppers)
    big = TrialShape(shoppers=args.big_shoppers)
    seeds = range(1000, 1000 + args.seeds)  # not the in-suite test's seeds (0-39)
    runs = [
        _run("responding", seeds, ResponseModel(), shape),
        _run("A/A (no response)", seeds, ResponseModel.none(), shape),
        _run("responding, big", range(5000, 5000 + args.big_seeds), ResponseModel(), big),
    ]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "effects": ResponseModel().stated(),
        "shape": {k: str(getattr(shape, k)) for k in shape.__slots__},
        "runs": runs,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
