"""The whole nightly on synthetic populations: wall time, rows and peak memory per step.

    .venv/bin/python -m bench.nightly_scale --sizes 10000 100000 --tasks 1 2 4

For each size, the population of ``bench.nightly_population`` (built first if missing,
dataset ``cartwise_scale_{n}``), then for each task count one run of every step in
order — ``features``, ``train``, ``evaluate``, ``score`` (the step service's
``run_step``, each in a child process), ``shards`` (the ``nightly_shards`` job's N tasks,
``python -m functions.nightly_shards.job`` with ``CLOUD_RUN_TASK_INDEX`` /
``CLOUD_RUN_TASK_COUNT``, all at once, as the local job stand-in starts them),
``compile_trees`` and ``publish``. Each child's peak resident memory is its
``ru_maxrss`` (``os.wait4``); rows written come from the steps' summaries (the shard
tasks' rows of the three per-shopper tables, their trees), rows read from the tasks'
own counts (shoppers streamed, candidate and history rows). The bench's own process
stays small (the population is built in a child), so that a child's peak is its own.
``train`` reads a hash sample of ``--train-shoppers`` (``NIGHTLY_TRAIN_SHOPPERS``,
docs/MODEL.md: 2,500 are enough; 0: every shopper, whose memory grows with the population),
``evaluate`` one of ``--evaluate-shoppers`` (``NIGHTLY_EVALUATE_SHOPPERS``; 0: every shopper).
Just before and just after the shard job, ``bench.calibration`` times a fixed workload
(this machine's speed at that moment): the per-shopper figure divided by it compares across
runs that the machine's drift would otherwise blur. Progress is printed as it goes;
``--json`` keeps the figures and ``--plot`` draws them (matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

MODEL_STEPS = ("features", "train", "evaluate", "score")


def _wait(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Exit status and peak resident memory (MiB) of a child process."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024.0


def _child_env(dataset: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    from bench.nightly_population import stack_env

    env = dict(os.environ) | stack_env() | {"NIGHTLY_DATASET": dataset}
    return env | (extra or {})


def run_child_step(name: str, run_id: str) -> int:
    """In a child: one step of the run, its summary as the last line of stdout."""
    from shared.nightly.composition import nightly_steps
    from shared.nightly.service import run_step

    summary = run_step(nightly_steps(), name, run_id)
    print(json.dumps(summary, default=str))
    return 0


def _step(name: str, run_id: str, dataset: str, log: Path) -> dict[str, Any]:
    started = time.monotonic()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.nightly_scale", "--step", name, "--run-id", run_id],
            env=_child_env(dataset),
            stdout=subprocess.PIPE,
            stderr=out,
        )
        assert process.stdout is not None
        output = process.stdout.read().decode()
        code, rss = _wait(process)
    if code != 0:
        raise SystemExit(f"step {name} failed ({code}): see {log}")
    summary = json.loads(output.strip().splitlines()[-1])
    return {
        "seconds": round(time.monotonic() - started, 1),
        "peak_mib": [round(rss)],
        "summary": summary,
    }


def _shards(run_id: str, tasks: int, dataset: str, log: Path) -> dict[str, Any]:
    started = time.monotonic()
    with log.open("ab") as out:
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "functions.nightly_shards.job"],
                env=_child_env(
                    dataset,
                    {
                        "CLOUD_RUN_TASK_INDEX": str(i),
                        "CLOUD_RUN_TASK_COUNT": str(tasks),
                        "NIGHTLY_RUN_ID": run_id,
                    },
                ),
                stdout=out,
                stderr=out,
            )
            for i in range(tasks)
        ]
        done = [_wait(p) for p in processes]
    if any(code for code, _ in done):
        raise SystemExit(f"a shard task failed: see {log}")
    return {
        "seconds": round(time.monotonic() - started, 1),
        "peak_mib": [round(rss) for _, rss in done],
    }


def _calibration() -> dict[str, float]:
    """``bench.calibration``'s fixed workload timed in a child (as the shard tasks are)."""
    output = subprocess.run(
        [sys.executable, "-m", "bench.calibration"], check=True, capture_output=True
    ).stdout
    result: dict[str, float] = json.loads(output.decode().strip().splitlines()[-1])
    return result


def calibrated(result: dict[str, Any]) -> float:
    """The run's shard job time per scored shopper per task, in units of its own
    calibration (the mean of the fixed workload's seconds before and after the job): a
    figure that compares across runs whatever the machine's speed at the time."""
    seconds = [float(c["seconds"]) for c in result["steps"]["shards"]["calibration"]]
    per_shopper = (
        float(result["steps"]["shards"]["seconds"]) * int(result["tasks"]) / scored(result)
    )
    return per_shopper / (sum(seconds) / len(seconds))


def clear_runs(dataset: str) -> None:
    """Every nightly table of the population's dataset emptied: each measured run starts
    with no earlier run's rows, which bqemulator would scan (BigQuery prunes them by the
    ``run_id`` clustering); the product itself keeps the live run's outputs only."""
    from bench.nightly_population import stack_env
    from shared.nightly.tables import NIGHTLY_TABLES
    from shared.platform import clients

    env = stack_env()
    project = env["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, env["BIGQUERY_EMULATOR_HOST"])
    for table in NIGHTLY_TABLES:
        client.query(f"DELETE FROM `{project}.{dataset}.{table.name}` WHERE TRUE").result()  # noqa: S608


def run_nightly(size: int, tasks: int, cutoff: date, log: Path) -> dict[str, Any]:
    """One whole nightly of the population ``size`` with ``tasks`` shard tasks."""
    from bench.nightly_population import dataset_name, stack_env

    dataset = dataset_name(size)
    os.environ.update(stack_env() | {"NIGHTLY_DATASET": dataset})
    from shared.nightly.composition import nightly_steps
    from shared.nightly.service import begin_run, finish_run

    clear_runs(dataset)
    run_id = f"scale-{size}-{tasks}-{uuid.uuid4().hex[:6]}"
    begin_run(nightly_steps(), run_id, cutoff, tasks)
    steps: dict[str, Any] = {}
    for name in MODEL_STEPS:
        print(f"    {name} ...", end="", flush=True)
        steps[name] = _step(name, run_id, dataset, log)
        print(f" {steps[name]['seconds']}s, {steps[name]['peak_mib'][0]} MiB", flush=True)
    print(f"    shards ({tasks} tasks) ...", end="", flush=True)
    before = _calibration()
    steps["shards"] = _shards(run_id, tasks, dataset, log)
    steps["shards"]["calibration"] = [before, _calibration()]
    record = nightly_steps().runs.get(run_id)
    assert record is not None
    shard_summaries = [
        step.summary or {} for n, step in record.steps.items() if n.endswith(f"_of_{tasks}")
    ]
    steps["shards"]["tasks"] = shard_summaries
    print(
        f" {steps['shards']['seconds']}s, peak {max(steps['shards']['peak_mib'])} MiB/task",
        flush=True,
    )
    for name in ("compile_trees", "publish"):
        print(f"    {name} ...", end="", flush=True)
        steps[name] = _step(name, run_id, dataset, log)
        print(f" {steps[name]['seconds']}s", flush=True)
    # As the workflow's last call: the run's work rows deleted.
    started = time.monotonic()
    deleted = finish_run(nightly_steps(), run_id, "published", None)
    steps["finish"] = {"seconds": round(time.monotonic() - started, 1), "summary": deleted}
    print(f"    finish ... {steps['finish']['seconds']}s", flush=True)
    return {
        "size": size,
        "tasks": tasks,
        "run_id": run_id,
        "seconds": round(sum(s["seconds"] for s in steps.values()), 1),
        "steps": steps,
    }


def scored(result: dict[str, Any]) -> int:
    """The shoppers the run's shard tasks scored (those with a year of history)."""
    return max(1, sum(int(t.get("scored_shoppers", 0)) for t in result["steps"]["shards"]["tasks"]))


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Shard seconds per shopper per task and peak memory per task, by population."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    for tasks in sorted({r["tasks"] for r in results}):
        rows = sorted((r for r in results if r["tasks"] == tasks), key=lambda r: r["size"])
        sizes = [r["size"] for r in rows]
        left.plot(
            sizes,
            [1000 * r["steps"]["shards"]["seconds"] * tasks / scored(r) for r in rows],
            marker="o",
            label=f"{tasks} task(s)",
        )
        timed = [r for r in rows if "calibration" in r["steps"]["shards"]]
        middle.plot(
            [r["size"] for r in timed],
            [1000 * calibrated(r) for r in timed],
            marker="o",
            label=f"{tasks} task(s)",
        )
        right.plot(
            sizes,
            [max(r["steps"]["shards"]["peak_mib"]) for r in rows],
            marker="o",
            label=f"{tasks} task(s)",
        )
    left.set(
        xscale="log",
        xlabel="shoppers",
        ylabel="shard job ms x tasks / scored shopper",
        title="sharded step: time per shopper per task",
    )
    middle.set(
        xscale="log",
        xlabel="shoppers",
        ylabel="ms per scored shopper per task at a 1 s calibration",
        title="the same, scaled to the run's calibration",
    )
    right.set(
        xscale="log",
        xlabel="shoppers",
        ylabel="peak MiB per task",
        title="sharded step: memory per task",
    )
    for axis in (left, middle, right):
        axis.set_ylim(bottom=0)  # growth read against the whole, not a zoomed axis
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.nightly_scale")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--cutoff", type=date.fromisoformat, default=date(2026, 11, 23))
    parser.add_argument("--train-shoppers", type=int, default=5_000)
    parser.add_argument("--evaluate-shoppers", type=int, default=20_000)
    parser.add_argument("--json", default=".local/bench/nightly_scale.json")
    parser.add_argument("--plot", default="docs/nightly_scale.png")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        return run_child_step(args.step, args.run_id)
    # 0: every shopper (a sample larger than any population takes them all).
    os.environ["NIGHTLY_TRAIN_SHOPPERS"] = str(args.train_shoppers or 10**9)
    os.environ["NIGHTLY_EVALUATE_SHOPPERS"] = str(args.evaluate_shoppers or 10**9)

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = json.loads(out.read_text()) if out.exists() else []
    log = Path(".local/logs/bench-nightly-scale.log")
    for size in args.sizes:
        print(f"population {size:,}", flush=True)
        # In a child process, as every step: this process stays small, so a step's child
        # does not inherit its pages in its peak memory (ru_maxrss keeps the high-water
        # mark from before exec).
        subprocess.run(
            [sys.executable, "-m", "bench.nightly_population", "--shoppers", str(size)],
            check=True,
        )
        for tasks in args.tasks:
            print(f"  nightly, {tasks} task(s)", flush=True)
            result = run_nightly(size, tasks, args.cutoff, log)
            result["train_shoppers"] = args.train_shoppers or "all"
            result["evaluate_shoppers"] = args.evaluate_shoppers or "all"
            print(f"  whole nightly {result['seconds']}s", flush=True)
            results = [r for r in results if (r["size"], r["tasks"]) != (size, tasks)]
            results.append(result)
            out.write_text(json.dumps(results, indent=1))
            if args.plot:
                plot(results, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
