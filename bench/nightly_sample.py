"""Is a ranker trained on a sample of shoppers as good as one trained on all of them?

    .venv/bin/python -m bench.nightly_sample --cutoff 2026-11-23 --sizes 1000 2500

On the stack's read models (after ``cartwise backfill --weeks 1-53``): the features of one
new run, then for each training set (all shoppers, then each ``--sizes`` hash sample,
``NIGHTLY_TRAIN_SHOPPERS``) ``train`` and ``evaluate`` on the same evaluation shoppers;
prints the ranker's next-basket recall@10 with its bootstrap interval, and the ranker's
paired lift over P-TopFreq, for each. The runs' models go to the artifacts bucket.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from shared.nightly.composition import model_context
from shared.nightly.steps import STEPS
from shared.system.settings import NightlyStepsSettings


def _row(table: list[dict[str, Any]], method: str) -> dict[str, Any]:
    for row in table:
        key = (row["level"], row["target"], row["method"], row["metric"])
        if key == ("product", "next_basket", method, "recall@10"):
            return row
    raise KeyError(method)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.nightly_sample")
    parser.add_argument("--cutoff", type=date.fromisoformat, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2500])
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    settings = NightlyStepsSettings()
    base = model_context(settings, f"sample-{uuid.uuid4().hex[:8]}", args.cutoff)
    started = time.monotonic()
    STEPS["features"](base)
    print(f"features {time.monotonic() - started:.0f}s")
    results = []
    for size in [None, *args.sizes]:
        ctx = dataclasses.replace(base, train_shoppers=size)
        t0 = time.monotonic()
        trained = STEPS["train"](ctx)
        evaluated = STEPS["evaluate"](ctx)
        table = evaluated["table"]
        assert isinstance(table, list)
        ranker, lift = _row(table, "ranker"), _row(table, "ranker - p_topfreq")
        result = {
            "train_shoppers": size or "all",
            "training_sample": trained.get("training_sample"),
            "train_groups": trained["shoppers"],
            "recall10": [ranker["value"], ranker["ci_low"], ranker["ci_high"]],
            "lift_over_p_topfreq": [lift["value"], lift["ci_low"], lift["ci_high"]],
            "gate_passed": evaluated["gate_passed"],
            "seconds": round(time.monotonic() - t0, 1),
        }
        results.append(result)
        print(json.dumps(result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
