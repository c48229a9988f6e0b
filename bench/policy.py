"""Does the learnt offer policy pay? The learnt policy against the uniform policy and
today's rules, on the same simulated shoppers and draws (``shared/journey/offer_trial.py``).

Per seed: the feedback loop (``--weeks`` weeks of offers with exploration, the nightly
learning and gating after each), then one evaluation week where each policy is run on the
same shoppers and draws. Reported: incremental targeted sales per euro of discount, total
incremental sales and discount within the same weekly budget, the paired ratio against
the uniform policy over seeds with its 95 % interval (t), the learnt policy's value
estimated offline (doubly robust, from held-out logs) beside its true value, the Qini
coefficients, the levels chosen per kind of shopper. Writes the table and a chart into
docs/MODEL.md (between the ``policy-bench`` markers) and docs/policy.png. Pure logic, no
stack.

    python -m bench.policy --seeds 10 --json .local/bench/policy.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.journey.offer_trial import KINDS, OfferShape, TrialResult, trial

POLICIES = ("learnt", "rules", "uniform")
DOC = Path("docs/MODEL.md")
CHART = Path("docs/policy.png")
BEGIN, END = "<!-- policy-bench:begin -->", "<!-- policy-bench:end -->"


def _t(df: int) -> float:
    """Student's t 97.5 % quantile (scipy: a dependency of LightGBM already installed)."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def paired(values: list[float]) -> dict[str, float]:
    """Mean and 95 % t interval of per-seed values."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan}
    half = _t(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": mean, "low": mean - half, "high": mean + half}


def summarize(results: list[TrialResult], margin: float) -> dict[str, Any]:
    per_euro = {p: [r.runs[p].per_euro for r in results] for p in POLICIES}
    summary: dict[str, Any] = {
        "seeds": [r.seed for r in results],
        "per_euro": {p: paired(v) for p, v in per_euro.items()},
        "incremental_sales": {
            p: paired([r.runs[p].incremental_sales for r in results]) for p in POLICIES
        },
        "discount": {p: paired([r.runs[p].discount for r in results]) for p in POLICIES},
        "net_margin": {
            p: paired([r.runs[p].net_margin(margin) for r in results]) for p in POLICIES
        },
        "offered": {p: paired([float(r.runs[p].offered) for r in results]) for p in POLICIES},
        "ratio_to_uniform": paired(
            [a / b for a, b in zip(per_euro["learnt"], per_euro["uniform"], strict=True)]
        ),
        "ratio_to_rules": paired(
            [a / b for a, b in zip(per_euro["learnt"], per_euro["rules"], strict=True)]
        ),
        "published_weeks": [r.published_weeks for r in results],
        "offline": [r.offline for r in results],
        "offline_coverage": statistics.fmean(
            float(r.offline["low"] <= r.offline["truth"] <= r.offline["high"])
            for r in results
            if r.offline
        )
        if any(r.offline for r in results)
        else math.nan,
        "qini": {
            level: statistics.fmean(r.qini[level] for r in results if level in r.qini)
            for level in results[0].qini
        },
        "chosen_by_kind": {
            kind: {
                level: statistics.fmean(r.chosen_by_kind[kind][level] for r in results)
                for level in results[0].chosen_by_kind[kind]
            }
            for kind in KINDS
        },
    }
    ratio = summary["ratio_to_uniform"]
    summary["target_met"] = bool(ratio["mean"] >= 1.3 and ratio["low"] > 1.0) and bool(
        summary["offline_coverage"] >= 0.8
    )
    return summary


def _money(value: float) -> str:
    return f"{value:,.0f}"


def markdown(summary: dict[str, Any], shape: OfferShape, machine: str) -> str:
    s = summary
    lines = [
        f"Run: {machine}; {len(s['seeds'])} seeds of {shape.shoppers:,} shoppers, "
        f"{shape.learning_weeks} learning weeks then one evaluation week; exploration "
        f"{shape.explore_share:.0%}, control group {shape.control_share:.0%}, weekly budget "
        f"{shape.budget_per_shopper:.2f} per offered shopper, margin {shape.margin:.0%}.",
        "",
        "| policy | incremental sales per euro of discount | incremental sales (week) "
        "| discount (week) | net margin (week) | shoppers offered |",
        "|---|---|---|---|---|---|",
    ]
    for p in POLICIES:
        e, inc, disc = s["per_euro"][p], s["incremental_sales"][p], s["discount"][p]
        lines.append(
            f"| {p} | {e['mean']:.2f} [{e['low']:.2f}, {e['high']:.2f}] | "
            f"{_money(inc['mean'])} | {_money(disc['mean'])} | "
            f"{_money(s['net_margin'][p]['mean'])} | "
            f"{_money(s['offered'][p]['mean'])} |"
        )
    r, q = s["ratio_to_uniform"], s["ratio_to_rules"]
    coverage = s["offline_coverage"]
    lines += [
        "",
        f"- Learnt against uniform, per euro of discount (paired over seeds): "
        f"**{r['mean']:.2f}x [{r['low']:.2f}, {r['high']:.2f}]** (target ≥ 1.3x, "
        f"interval above 1.0: {'met' if r['mean'] >= 1.3 and r['low'] > 1 else 'not met'}); "
        f"against today's rules: {q['mean']:.2f}x [{q['low']:.2f}, {q['high']:.2f}].",
        f"- Offline estimate of the learnt policy's value (doubly robust, held-out logs) "
        f"against its true value on the same rows: the 95 % interval covers the truth in "
        f"{coverage:.0%} of seeds.",
        "",
        "| seed | offline estimate (net margin per offered shopper-week) | 95 % interval "
        "| true value |",
        "|---|---|---|---|",
    ]
    for seed, o in zip(s["seeds"], s["offline"], strict=True):
        if o:
            lines.append(
                f"| {seed} | {o['estimate']:.3f} | [{o['low']:.3f}, {o['high']:.3f}] "
                f"| {o['truth']:.3f} |"
            )
    lines += [
        "",
        "Levels the published policy chose, by the shoppers' hidden kind (share of each kind):",
        "",
        "| kind | " + " | ".join(s["chosen_by_kind"]["sure"]) + " |",
        "|---|" + "---|" * len(s["chosen_by_kind"]["sure"]),
    ]
    for kind, shares in s["chosen_by_kind"].items():
        lines.append(f"| {kind} | " + " | ".join(f"{v:.0%}" for v in shares.values()) + " |")
    lines += [
        "",
        "Qini coefficient per level (explored offers against the control group, the last "
        "published week's held-out shoppers; above 0: ranks better than chance): "
        + ", ".join(f"{k} {v:.3f}" for k, v in s["qini"].items())
        + ".",
        f"Published after weeks: {s['published_weeks']}.",
        "",
        f"![Incremental sales per euro of discount]({CHART.name})",
    ]
    return "\n".join(lines)


def chart(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    names = list(POLICIES)
    for axis, key, title in (
        (left, "per_euro", "Incremental sales per euro of discount"),
        (right, "incremental_sales", "Incremental sales in the week (same budget)"),
    ):
        means = [summary[key][p]["mean"] for p in names]
        errors = [
            [m - summary[key][p]["low"] for m, p in zip(means, names, strict=True)],
            [summary[key][p]["high"] - m for m, p in zip(means, names, strict=True)],
        ]
        axis.bar(names, means, yerr=errors, capsize=6, color=["#2a7", "#79c", "#bbb"])
        axis.set_title(title, fontsize=10)
    fig.suptitle(f"Offer policies, {len(summary['seeds'])} seeds (95 % t intervals)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_doc(text: str, doc: Path = DOC) -> None:
    content = doc.read_text()
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--shoppers", type=int, default=OfferShape.shoppers)
    parser.add_argument("--weeks", type=int, default=OfferShape.learning_weeks)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/MODEL.md")
    args = parser.parse_args()
    shape = replace(OfferShape(), shoppers=args.shoppers, learning_weeks=args.weeks)
    started = time.monotonic()
    results = []
    for seed in range(1, args.seeds + 1):
        results.append(trial(seed, shape))
        r = results[-1].runs
        print(
            f"seed {seed}/{args.seeds} ({time.monotonic() - started:.0f} s): per euro "
            + ", ".join(f"{p} {r[p].per_euro:.2f}" for p in POLICIES),
            flush=True,
        )
    summary = summarize(results, shape.margin)
    machine = (
        f"{platform.node()} ({platform.processor() or platform.machine()}), "
        f"{datetime.now(UTC):%Y-%m-%d}, {time.monotonic() - started:.0f} s"
    )
    text = markdown(summary, shape, machine)
    print(text)
    if not args.no_doc:
        chart(summary, CHART)
        write_doc(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"shape": asdict(shape), "summary": summary}, indent=2, default=str)
        )


if __name__ == "__main__":
    main()
