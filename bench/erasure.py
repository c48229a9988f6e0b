"""Erasure of one shopper among the full Complete Journey history, measured.

``python -m bench.erasure [--json out.json]`` (``make bench-erasure``), on a stack whose
read models hold the history (``cartwise backfill --weeks 1-53``):

1. Picks the shopper with the most orders in ``orders`` and sends them a few live events
   through the Shopper Event API (so that Bigtable holds them too), waits until frozen.
2. Counts, per table, the shopper's rows and everybody else's.
3. ``POST /v1/erasure-requests``, then drives ``POST /erasures/run`` (what Cloud Scheduler
   fires every minute) until ``GET`` says done; the time from the request to done is the
   figure (the scheduler's up-to-one-minute wait excluded), and per store the time its
   receipt took.
4. Checks that the shopper has no row left and that everybody else's counts are unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.freeze import stack_env
from emulators.config import StackSettings


def counts(client: Any, project: str, retailer: str, shopper: str) -> dict[str, tuple[int, int]]:
    """Per BigQuery table with a shopper column: (the shopper's rows, the others' rows)."""
    from google.cloud import bigquery

    from shared.system.resources import SYSTEM

    found: dict[str, tuple[int, int]] = {}
    for table in SYSTEM.bigquery_tables:
        if "shopper_id" not in table.column_names:
            continue
        mine = "shopper_id = @s" + (
            " AND retailer_id = @r" if "retailer_id" in table.column_names else ""
        )
        sql = (
            f"SELECT COUNTIF({mine}) AS mine, COUNTIF(NOT ({mine})) AS others "  # noqa: S608
            f"FROM `{project}.{table.dataset}.{table.name}`"
        )
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("s", "STRING", shopper),
                bigquery.ScalarQueryParameter("r", "STRING", retailer),
            ]
        )
        row = next(iter(client.query(sql, job_config=config).result(timeout=300)))
        found[table.name] = (int(row.mine or 0), int(row.others or 0))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.erasure", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    env = stack_env(StackSettings())
    from shared.platform import clients

    project = env["GOOGLE_CLOUD_PROJECT"]
    bigquery = clients.bigquery_client(project, env["BIGQUERY_EMULATOR_HOST"])
    top = next(
        iter(
            bigquery.query(
                f"SELECT retailer_id, shopper_id, COUNT(*) AS n FROM `{project}.cartwise.orders` "  # noqa: S608
                "GROUP BY retailer_id, shopper_id ORDER BY n DESC LIMIT 1"
            ).result(timeout=300)
        ),
        None,
    )
    if top is None:
        sys.exit("no orders: load the history first (cartwise backfill --weeks 1-53)")
    retailer, shopper = str(top.retailer_id), str(top.shopper_id)
    history = {
        r.t: int(r.n)
        for r in bigquery.query(
            " UNION ALL ".join(
                f"SELECT '{t}' AS t, COUNT(*) AS n FROM `{project}.cartwise.{t}`"  # noqa: S608
                for t in ("orders", "sold_products", "page_views", "basket_changes")
            )
        ).result(timeout=300)
    }
    print(f"history: {history}; erasing {retailer}/{shopper} ({top.n} orders)", flush=True)

    from shared.journey.replay_keys import replay_api_keys

    keys = replay_api_keys(env, (retailer,))
    headers = {"X-Api-Key": keys[retailer], "Content-Type": "application/json"}
    from tests.factories import event

    live = [
        event("page_viewed", shopper, datetime.now(UTC) - timedelta(minutes=i)) for i in range(20)
    ]
    sent = requests.post(
        f"{env['INGEST_URL']}/v1/events", json={"events": live}, headers=headers, timeout=60
    )
    assert sent.status_code == 202, sent.text
    time.sleep(5)  # frozen (the freezer's batch wait is 0.5 s)

    before = counts(bigquery, project, retailer, shopper)
    print("rows of the shopper before:", {t: m for t, (m, _) in before.items() if m}, flush=True)

    started = time.monotonic()
    created = requests.post(
        f"{env['ERASURE_URL']}/v1/erasure-requests",
        json={"shopper_id": shopper},
        headers=headers,
        timeout=60,
    )
    assert created.status_code == 202, created.text
    request_id = created.json()["request_id"]
    sweeps = 0
    status: dict[str, Any] = {}
    while time.monotonic() - started < args.timeout:
        sweeps += 1
        swept = requests.post(f"{env['PRIVACY_MAINTENANCE_URL']}/erasures/run", timeout=3600)
        assert swept.status_code == 200, swept.text
        status = requests.get(
            f"{env['ERASURE_URL']}/v1/erasure-requests/{request_id}", headers=headers, timeout=60
        ).json()
        if status["status"] == "done":
            break
    seconds = time.monotonic() - started
    if status.get("status") != "done":
        sys.exit(f"erasure not done in {args.timeout:.0f}s: {status}")

    after = counts(bigquery, project, retailer, shopper)
    left = {t: m for t, (m, _) in after.items() if m}
    changed = {t: (before[t][1], after[t][1]) for t in after if after[t][1] != before[t][1]}
    requested = datetime.fromisoformat(status["requested_at"])
    marks = sorted(
        (datetime.fromisoformat(r["at"]), name, r["deleted"])
        for name, r in status["receipts"].items()
    )
    per_store: list[dict[str, Any]] = []
    previous = requested
    for at, name, deleted in marks:
        per_store.append(
            {
                "store": name,
                "deleted": deleted,
                "seconds": round((at - previous).total_seconds(), 2),
            }
        )
        previous = at
    result = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "history_rows": history,
        "shopper_orders": int(top.n),
        "records_deleted": sum(r["deleted"] for r in status["receipts"].values()),
        "stores": len(status["receipts"]),
        "seconds_request_to_done": round(seconds, 1),
        "sweeps": sweeps,
        "slowest_stores": sorted(per_store, key=lambda s: -s["seconds"])[:6],
        "shopper_rows_left": left,
        "others_changed": changed,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if not left and not changed else 1


if __name__ == "__main__":
    sys.exit(main())
