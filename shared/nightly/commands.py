"""The nightly run's command: ``cartwise nightly`` runs the nightly workflow on the local
workflows emulator and follows its steps (docs/NIGHTLY.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from shared.platform.terminal import format_table, stack_env


def _brief(summary: dict[str, Any] | None) -> str:
    if not summary:
        return ""
    skip = {"step", "run_id", "seconds", "table", "compiled_at", "valid_until", "retailers"}
    shown = {k: v for k, v in summary.items() if k not in skip and not isinstance(v, dict | list)}
    return ", ".join(f"{k} {v}" for k, v in list(shown.items())[:8])


def nightly_command(args: argparse.Namespace) -> int:
    import threading

    env = stack_env()
    run_id = args.run_id or f"nightly-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    argument: dict[str, Any] = {"run_id": run_id}
    if args.cutoff:
        argument["cutoff"] = args.cutoff
    url = (
        f"{env['WORKFLOWS_EMULATOR_URL']}/v1/projects/{env['GOOGLE_CLOUD_PROJECT']}"
        "/locations/europe-west1/workflows/nightly/executions"
    )
    print(f"nightly run {run_id} on the workflows emulator ({url})", flush=True)
    outcome: dict[str, Any] = {}

    def execute() -> None:
        request = urllib.request.Request(  # noqa: S310 - loopback URL from stack.env
            url,
            data=json.dumps({"argument": json.dumps(argument)}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=3600) as response:  # noqa: S310
                outcome.update(status=response.status, body=json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            outcome.update(status=exc.code, body=json.loads(exc.read() or b"{}"))
        except OSError as exc:
            outcome.update(status=0, body={"error": {"message": str(exc)}})

    thread = threading.Thread(target=execute, daemon=True)
    thread.start()
    shown: dict[str, str] = {}
    started = time.monotonic()
    while True:
        finished = not thread.is_alive()
        try:
            with urllib.request.urlopen(  # noqa: S310 - loopback URL from stack.env
                f"{env['NIGHTLY_STEPS_URL']}/runs/{run_id}", timeout=10
            ) as response:
                record = json.loads(response.read())
        except (urllib.error.URLError, OSError):
            record = {"steps": {}}
        steps = sorted(record.get("steps", {}).items(), key=lambda kv: kv[1]["started_at"])
        for name, step in steps:
            if shown.get(name) == step["status"]:
                continue
            shown[name] = step["status"]
            elapsed = time.monotonic() - started
            if step["status"] == "running":
                print(f"  [{elapsed:7.1f}s] {name:<14} running ...", flush=True)
            elif step["status"] == "succeeded":
                print(
                    f"  [{elapsed:7.1f}s] {name:<14} done in {step['seconds']:.1f}s  "
                    f"{_brief(step.get('summary'))}",
                    flush=True,
                )
            else:
                print(f"  [{elapsed:7.1f}s] {name:<14} FAILED: {step.get('error')}", flush=True)
        if finished:
            break
        time.sleep(0.5)
    status, body = outcome.get("status"), outcome.get("body", {})
    if status != 200:
        error = body.get("error", {})
        detail = error.get("body", {}).get("error", {}) if isinstance(error, dict) else {}
        print(
            f"\nthe nightly run failed (HTTP {status}): "
            f"{detail.get('message') or error.get('message') or body}",
            file=sys.stderr,
        )
        return 1
    evaluation = (body.get("steps", {}).get("evaluate") or {}).get("summary") or {}
    if evaluation:
        print(f"\n== Evaluation (gate passed: {evaluation.get('gate_passed')})")
        print(format_table(evaluation.get("table")))
    print(f"\n== Summary: {body['outcome']} in {body['seconds']:.1f}s (cut-off {body['cutoff']})")
    for name, step in body.get("steps", {}).items():
        if step is None:
            print(f"  {name:<14} -")
        else:
            print(f"  {name:<14} {step['seconds']:7.1f}s  {_brief(step.get('summary'))}")
    if args.json:
        print(json.dumps(body, indent=1, default=str))
    if body["outcome"] != "published":
        print("the gate refused the model: the previous trees stay live", file=sys.stderr)
        return 3
    return 0


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``nightly``."""
    nightly = subcommands.add_parser(
        "nightly",
        help="run the nightly workflow on the local workflows emulator (docs/NIGHTLY.md)",
    )
    nightly.add_argument("--run-id", help="default: nightly-YYYYmmdd-HHMMSS")
    nightly.add_argument(
        "--cutoff", help="YYYY-MM-DD, the last day learnt from (default: yesterday)"
    )
    nightly.add_argument("--json", action="store_true", help="also print the whole summary")
    nightly.set_defaults(run=nightly_command)
