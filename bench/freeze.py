"""Freezer throughput and lag, beside the BigQuery emulator's own ceiling, in one run.

``python -m bench.freeze [--events 20000] [--json out.json]``

1. Publishes ``--events`` realistic shopper-event messages (the ingest envelope, ~1,000
   shoppers, the traffic mix of ``bench.ingest``) straight to ``shopper-events`` under a
   fresh retailer id, so that only the freezer is measured.
2. Polls BigQuery until every expected row of every read model is queryable, and, for a
   sample of page views, records when each row first became queryable: the lag between
   ingestion (publish) and the row being queryable.
3. Ceiling: writes the same rows (under another retailer id) with the freezer's own sink
   (one MERGE per table per 2,000 events), without Pub/Sub: what the BigQuery emulator
   takes at best on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.ingest import generate_bodies
from emulators.config import StackSettings
from shared.contract.messages import InboundMessage
from shared.demo.probes import percentile
from shared.freezer.service import transform

SAMPLE = 200
POLL_S = 0.25


def stack_env(settings: StackSettings) -> dict[str, str]:
    if not settings.env_file.exists():
        sys.exit("the stack is not up: `make up` first")
    env = dict(line.split("=", 1) for line in settings.env_file.read_text().splitlines() if line)
    os.environ.update(env)
    return env


def messages(retailer: str, count: int, seed: int) -> list[dict[str, Any]]:
    bodies = generate_bodies(max(1, count // 500 + 1), 500, 1000, seed)
    events = [e for body in bodies for e in json.loads(body)["events"]][:count]
    return [{"retailer_id": retailer, "ingested_at": "", "event": e} for e in events]


def expected_counts(envelopes: list[dict[str, Any]]) -> dict[str, int]:
    now = datetime.now(UTC).isoformat()
    tables, poison, _ = transform(
        [
            InboundMessage(message_id=str(i), data=json.dumps({**m, "ingested_at": now}).encode())
            for i, m in enumerate(envelopes)
        ]
    )
    assert not poison, poison[:1]
    return {t: len(rows) for t, rows in tables.items()}


def seen(client: Any, project: str, retailer: str, ids: list[str]) -> set[str]:
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("retailer", "STRING", retailer),
            bigquery.ArrayQueryParameter("ids", "STRING", ids),
        ]
    )
    sql = (
        f"SELECT event_id FROM `{project}.cartwise.page_views` "  # noqa: S608
        "WHERE retailer_id = @retailer AND event_id IN UNNEST(@ids)"
    )
    return {r.event_id for r in client.query(sql, job_config=config).result(timeout=60)}


def run(count: int, seed: int, timeout_s: float, ordering_keys: bool = True) -> dict[str, Any]:
    from google.pubsub_v1.types import PubsubMessage

    from shared.freezer.bigquery_read_models import BigQueryReadModelSink, count_rows
    from shared.freezer.read_models import READ_MODELS
    from shared.platform import clients
    from shared.system.resources import SHOPPER_EVENTS_TOPIC

    env = stack_env(StackSettings())
    project = env["GOOGLE_CLOUD_PROJECT"]
    run_id = uuid.uuid4().hex[:8]
    retailer = f"bench-freeze-{run_id}"
    print(f"generating {count} events ...", flush=True)
    envelopes = messages(retailer, count, seed)
    expected = expected_counts(envelopes)
    total_rows = sum(expected.values())
    bq = clients.bigquery_client(project, env["BIGQUERY_EMULATOR_HOST"])
    publisher = clients.publisher_api()
    topic = clients.topic_path(project, SHOPPER_EVENTS_TOPIC)
    page_views = [m for m in envelopes if m["event"]["type"] == "page_viewed"]
    sample = {
        m["event"]["event_id"]: m
        for m in random.Random(seed).sample(page_views, min(SAMPLE, len(page_views)))
    }

    print(f"publishing {count} messages ({total_rows} rows expected) ...", flush=True)
    started = time.monotonic()
    published_at: dict[str, float] = {}
    for start in range(0, len(envelopes), 1000):
        chunk = envelopes[start : start + 1000]
        now_iso, now = datetime.now(UTC).isoformat(), time.monotonic()
        for m in chunk:
            m["ingested_at"] = now_iso
            if m["event"]["event_id"] in sample:
                published_at[m["event"]["event_id"]] = now
        publisher.publish(
            topic=topic,
            messages=[
                PubsubMessage(
                    data=json.dumps(m, separators=(",", ":")).encode(),
                    attributes={
                        "event_id": m["event"]["event_id"],
                        "type": m["event"]["type"],
                        "retailer_id": retailer,
                        "schema_version": "1",
                    },
                    ordering_key=f"{retailer}#{m['event']['shopper_id']}",
                )
                for m in chunk
            ],
            timeout=60,
        )
    publish_s = time.monotonic() - started

    first_seen: dict[str, float] = {}
    counts: dict[str, int] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = [i for i in sample if i not in first_seen]
        if pending:
            now = time.monotonic()
            for event_id in seen(bq, project, retailer, pending):
                first_seen[event_id] = now
        counts = count_rows(
            bq, project, [t for t in READ_MODELS if t.name in expected], "retailer_id", retailer
        )
        done = sum(counts.values())
        elapsed = time.monotonic() - started
        print(
            f"\r  {elapsed:6.1f}s  rows {done}/{total_rows}  ({done / elapsed:,.0f} rows/s)",
            end="",
            flush=True,
        )
        if counts == expected and len(first_seen) == len(sample):
            break
        time.sleep(POLL_S)
    frozen_s = time.monotonic() - started
    print()
    complete = counts == expected
    lags = [first_seen[i] - published_at[i] for i in first_seen]

    print("ceiling: the same rows straight into the sink (no Pub/Sub) ...", flush=True)
    ceiling_retailer = f"bench-ceiling-{run_id}"
    now_iso = datetime.now(UTC).isoformat()
    ceiling_messages = [
        InboundMessage(
            message_id=str(i),
            data=json.dumps(
                {**m, "retailer_id": ceiling_retailer, "ingested_at": now_iso}
            ).encode(),
        )
        for i, m in enumerate(envelopes)
    ]
    sink = BigQueryReadModelSink(bq, project, READ_MODELS)
    ceiling_started = time.monotonic()
    for start in range(0, len(ceiling_messages), 2000):
        tables, _, _ = transform(ceiling_messages[start : start + 2000])
        for table, rows in tables.items():
            sink.write(table, rows)
    ceiling_s = time.monotonic() - ceiling_started

    return {
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "events": count,
        "rows": total_rows,
        "complete": complete,
        "counts": counts,
        "publish_s": round(publish_s, 2),
        "frozen_s": round(frozen_s, 2),
        # Rates from what was frozen (a run that timed out froze only part of it).
        "rows_frozen": sum(counts.values()),
        "events_per_s": round(count * sum(counts.values()) / total_rows / frozen_s, 1),
        "rows_per_s": round(sum(counts.values()) / frozen_s, 1),
        "lag_s": {
            "p50": round(percentile(lags, 0.5), 2),
            "p95": round(percentile(lags, 0.95), 2),
            "max": round(max(lags, default=0), 2),
            "samples": len(lags),
            "poll_interval_s": POLL_S,
            "mean": round(statistics.fmean(lags), 2) if lags else 0,
        },
        "ceiling": {
            "seconds": round(ceiling_s, 2),
            "events_per_s": round(count / ceiling_s, 1),
            "rows_per_s": round(total_rows / ceiling_s, 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.freeze", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--no-ordering-keys",
        action="store_true",
        help="publish without the per-shopper ordering key ingest sets (emulator comparison)",
    )
    args = parser.parse_args(argv)
    report = run(args.events, args.seed, args.timeout, not args.no_ordering_keys)
    print(
        f"\n{'freezer (Pub/Sub -> worker -> BigQuery emulator)':<52}"
        f"{report['events_per_s']:>10,.0f} events/s {report['rows_per_s']:>10,.0f} rows/s"
    )
    print(
        f"{'ceiling (same rows, sink only, no Pub/Sub)':<52}"
        f"{report['ceiling']['events_per_s']:>10,.0f} events/s "
        f"{report['ceiling']['rows_per_s']:>10,.0f} rows/s"
    )
    lag = report["lag_s"]
    print(
        f"lag ingestion -> queryable: p50 {lag['p50']}s  p95 {lag['p95']}s  "
        f"(n={lag['samples']}, polled every {lag['poll_interval_s']}s)"
    )
    print(
        f"complete: {report['complete']}  ({report['events']} events, {report['rows']} rows, "
        f"{report['machine']['cores']} cores, {report['machine']['date']})"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
