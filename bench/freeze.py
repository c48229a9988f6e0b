"""The cold path, measured: append rate, compaction rate, freshness, and what a compaction
costs as the read models grow, each beside its ceiling or baseline in the same run.

``python -m bench.freeze [--events 20000] [--pull-loops N] [--sizes 0,100000,400000]
[--json out.json]`` (``make bench-freeze``: 100,000 events)

Part 1, the stream: a topic and subscription of the bench's own and a freezer worker on
it (``python -m functions.freeze_events.worker``, the stack's settings, only its
subscription changed): the bench's events reach no other consumer of ``shopper-events``,
so the freezer is measured alone, as each worker pool runs on its own instances in the
cloud; the scheduler's ``compact-read-models`` compacts the landing tables beside it.

1. publishes ``--events`` realistic shopper-event messages (the ingest envelope, ~1,000
   shoppers, the traffic mix of ``bench.ingest``) to that topic under a fresh retailer id;
2. polls the landing tables and the read models for that retailer: rows landed and rows
   compacted over time (the append rate, the compaction rate), and for a sample of page
   views when each row first became queryable in ``cartwise.page_views`` (freshness: from
   publish, i.e. ingest's acknowledgement, to queryable in the read model); and the CPU
   each process group used until every row landed (/proc);
3. ceilings: the same landing rows appended by the bare client (``insert_rows_json``, the
   call the local landing path makes), in the freezer's batch size, one after the other,
   no Pub/Sub: alone, into scratch copies of the landing tables (what bqemulator takes at
   best), and beside the compaction, into the landing tables themselves under a fresh
   retailer (the freezer's own conditions).

Part 2, a compaction's cost against the read model's size: a scratch copy of
``page_views`` prefilled with M rows spread over days at a fixed daily volume (Parquet
loads), then one slice of ``--slice`` landing rows compacted by the production adapter
(``BigQuerySlices.merge``), then the same slice again (must insert nothing). Reported per
M: the MERGE's time here, and the read-model rows in the partitions the MERGE is bounded
to (between the slice's earliest and latest ``occurred_at``): what BigQuery's partition
pruning lets it scan in the cloud. The baseline is M = the smallest size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.ingest import generate_bodies
from emulators import processes
from emulators.config import ROOT, StackSettings
from emulators.stack import components, read_state
from shared.contract.messages import InboundMessage
from shared.demo.probes import percentile
from shared.freezer.read_models import LANDED_AT, LANDINGS, READ_MODELS
from shared.freezer.service import transform
from shared.platform.resource_model import BigQueryTable

SAMPLE = 200
POLL_S = 0.5
BATCH_EVENTS = 2_000  # the freezer worker's batch (docs/FREEZER.md)
DAILY_ROWS = 50_000  # part 2: read-model rows per day (10M events/day is ~6M page views)
CHART = Path("docs/bench/freeze.svg")


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


def rows_of(envelopes: list[dict[str, Any]], retailer: str) -> dict[str, list[dict[str, Any]]]:
    """The read-model rows the freezer makes of these envelopes (ingested now)."""
    now = datetime.now(UTC).isoformat()
    tables, poison, _ = transform(
        [
            InboundMessage(
                message_id=str(i),
                data=json.dumps({**m, "retailer_id": retailer, "ingested_at": now}).encode(),
            )
            for i, m in enumerate(envelopes)
        ]
    )
    assert not poison, poison[:1]
    return tables


def create_table(client: Any, project: str, declared: BigQueryTable, dataset: str) -> str:
    """A scratch copy of a declared table (same columns, partitioning, clustering)."""
    from google.cloud import bigquery

    ref = f"{project}.{dataset}.{declared.name}"
    table = bigquery.Table(
        ref, schema=[bigquery.SchemaField(c.name, c.type, mode=c.mode) for c in declared.columns]
    )
    if declared.partition_field:
        table.time_partitioning = bigquery.TimePartitioning(
            type_=declared.partition_type, field=declared.partition_field
        )
    if declared.clustering:
        table.clustering_fields = list(declared.clustering)
    client.create_table(table, timeout=60)
    return ref


def _scalar(client: Any, sql: str, params: list[Any] | None = None) -> int:
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(query_parameters=params or [])
    return int(next(iter(client.query(sql, job_config=config).result(timeout=120)))[0])


def _count(client: Any, project: str, tables: list[BigQueryTable], retailer: str) -> int:
    from shared.freezer.bigquery_read_models import count_rows

    return sum(count_rows(client, project, tables, "retailer_id", retailer).values())


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


def publish(topic: str, retailer: str, envelopes: list[dict[str, Any]]) -> dict[str, float]:
    """Publish every envelope (ingest's attributes and ordering key) to ``topic``; the
    publish moment of each event id."""
    from google.pubsub_v1.types import PubsubMessage

    from shared.platform import clients

    publisher = clients.publisher_api()
    published_at: dict[str, float] = {}
    for start in range(0, len(envelopes), 1000):
        chunk = envelopes[start : start + 1000]
        now_iso, now = datetime.now(UTC).isoformat(), time.monotonic()
        for m in chunk:
            m["ingested_at"] = now_iso
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
    return published_at


def _rate(series: list[tuple[float, int, int]], column: int, total: int) -> dict[str, float]:
    """Sustained rate of one column of the series: rows between 10% and 90% of the total,
    over the time between; and when the total was reached."""

    def first(at_least: float) -> float | None:
        return next((s[0] for s in series if s[column] >= at_least), None)

    t10, t90, t100 = first(0.1 * total), first(0.9 * total), first(total)
    sustained = 0.8 * total / (t90 - t10) if t10 is not None and t90 and t90 > t10 else 0.0
    return {
        "sustained_rows_per_s": round(sustained, 1),
        "all_in_s": round(t100, 2) if t100 is not None else -1.0,
    }


def warm_up(topic: str, bq: Any, project: str, retailer: str, seed: int, timeout_s: float) -> None:
    """Wait until an event is queryable in the read models: the freezer and the
    compaction's schedule are running (after ``make up`` the first compaction comes with the
    scheduler's next minute), so that freshness is measured in the steady state."""
    print("warm-up: one event through to the read models ...", flush=True)
    probe = messages(retailer, 1, seed)
    read_models = [t for t in READ_MODELS if t.name in rows_of(probe, retailer)]
    publish(topic, retailer, probe)
    deadline = time.monotonic() + timeout_s
    while _count(bq, project, read_models, retailer) == 0:
        if time.monotonic() > deadline:
            sys.exit("warm-up: the event never reached the read models")
        time.sleep(POLL_S)


@contextlib.contextmanager
def own_freezer(env: dict[str, str], run_id: str, loops: int | None) -> Iterator[tuple[str, int]]:
    """A topic and subscription of the bench's own, and a freezer worker on it: the stack's
    own ``freeze_events`` component (its command and environment), only its subscription
    changed. The bench's events reach no other consumer, so the freezer is measured alone,
    as each worker pool runs on its own instances in the cloud; the stack's compaction
    still runs beside it, on the same landing tables. Yields the topic's path and the
    worker's process group."""
    from shared.platform import clients

    project = env["GOOGLE_CLOUD_PROJECT"]
    name = f"bench-freeze-{run_id}"
    publisher, subscriber = clients.publisher_api(), clients.subscriber_client()
    topic = clients.topic_path(project, name)
    subscription = subscriber.subscription_path(project, name)
    publisher.create_topic(name=topic, timeout=30)
    subscriber.create_subscription(
        request={"name": subscription, "topic": topic, "ack_deadline_seconds": 60}, timeout=30
    )
    settings = StackSettings()
    freezer = next(c for c in components(settings) if c.name == "freeze_events")
    worker_env = {k: v for k, v in freezer.env.items() if k != "WORKER_HEARTBEAT_FILE"}
    worker_env |= {"FREEZER_SUBSCRIPTION": name}
    if loops is not None:
        worker_env["FREEZER_PULL_LOOPS"] = str(loops)
    worker = processes.start(
        freezer.command,
        log_file=settings.logs_dir / f"{name}.log",
        env={**os.environ, **worker_env},
        cwd=ROOT,
    )
    try:
        yield topic, worker
    finally:
        processes.stop_group(worker, timeout_s=20)  # a pull may wait up to 15 s
        with contextlib.suppress(Exception):
            subscriber.delete_subscription(subscription=subscription, timeout=30)
            publisher.delete_topic(topic=topic, timeout=30)


def stream(
    env: dict[str, str], bq: Any, count: int, seed: int, timeout_s: float, loops: int | None
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    with own_freezer(env, run_id, loops) as (topic, worker):
        state = read_state(StackSettings())
        groups = {"freezer (the bench's)": worker}
        groups |= {name: state[name] for name in ("bigquery", "pubsub", "compact_read_models")}
        return _stream(topic, groups, env, bq, count, seed, timeout_s, run_id)


def cpu_seconds(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the live processes of each process group
    (a stack component and its children, e.g. an emulator's JVM under its gcloud wrapper),
    the machine's busy total, and the bench's own, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for name, group in groups.items():
        used[name] = 0.0
        for pid in processes.group_members(group):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                used[name] += (int(fields[11]) + int(fields[12])) / ticks
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    used["machine (busy)"] = (sum(map(int, cpu)) - int(cpu[3]) - int(cpu[4])) / ticks
    used["bench"] = time.process_time()
    return used


def _stream(
    topic: str,
    groups: dict[str, int],
    env: dict[str, str],
    bq: Any,
    count: int,
    seed: int,
    timeout_s: float,
    run_id: str,
) -> dict[str, Any]:
    from shared.freezer.bigquery_read_models import count_rows

    project = env["GOOGLE_CLOUD_PROJECT"]
    retailer = f"bench-freeze-{run_id}"
    print(f"generating {count} events ...", flush=True)
    envelopes = messages(retailer, count, seed)
    expected = {t: len(r) for t, r in rows_of(envelopes, retailer).items()}
    total = sum(expected.values())
    read_models = [t for t in READ_MODELS if t.name in expected]
    landings = [LANDINGS[t.name] for t in read_models]
    page_views = [m["event"]["event_id"] for m in envelopes if m["event"]["type"] == "page_viewed"]
    sample = random.Random(seed).sample(page_views, min(SAMPLE, len(page_views)))

    warm_up(topic, bq, project, f"bench-warm-{run_id}", seed, timeout_s)
    print(f"publishing {count} messages ({total} read-model rows expected) ...", flush=True)
    cpu_before = cpu_seconds(groups)
    started = time.monotonic()
    published_at = publish(topic, retailer, envelopes)
    publish_s = time.monotonic() - started

    first_seen: dict[str, float] = {}
    series: list[tuple[float, int, int]] = []  # (s since start, landed, compacted)
    deadline = time.monotonic() + timeout_s
    landed = compacted = 0
    cores: dict[str, float] = {}  # CPU cores each process used until every row landed
    while time.monotonic() < deadline:
        # One query a poll (the bench's polls load the emulator it measures); the sampled
        # page views are looked for only when the read models grew since the last poll.
        counts = count_rows(
            bq,
            project,
            [*(landings if landed < total else []), *read_models],
            "retailer_id",
            retailer,
        )
        landed = sum(counts[t.name] for t in landings) if landed < total else landed
        if landed >= total and not cores:
            spent, wall = cpu_seconds(groups), time.monotonic() - started
            cores = {k: round((spent[k] - cpu_before[k]) / wall, 2) for k in spent}
        grown = sum(counts[t.name] for t in read_models)
        now = time.monotonic()
        pending = [i for i in sample if i not in first_seen]
        if pending and grown > compacted:
            for event_id in seen(bq, project, retailer, pending):
                first_seen[event_id] = now
        compacted = grown
        series.append((round(now - started, 2), landed, compacted))
        print(
            f"\r  {now - started:6.1f}s  landed {landed}/{total}  compacted {compacted}/{total}",
            end="",
            flush=True,
        )
        if compacted >= total and len(first_seen) == len(sample):
            break
        time.sleep(POLL_S)
    print()
    lags = [first_seen[i] - published_at[i] for i in first_seen]
    append = _rate(series, 1, total)
    # Once the bench's publisher is done, the freezer has the box (2 cores) to itself: the
    # rate at which it drains what is left is the closest local figure to its own speed.
    start_t, start_landed = series[0][0], series[0][1]
    end_t = append["all_in_s"]
    append["drain_rows_per_s"] = (
        round((total - start_landed) / (end_t - start_t), 1) if end_t > start_t else 0.0
    )
    compaction = _rate(series, 2, total)
    events_per_row = count / total

    print("ceiling: the same landing rows by the bare client, no Pub/Sub ...", flush=True)
    scratch = f"bench_freeze_{run_id}"
    ceiling_s = append_ceiling(bq, project, scratch, envelopes, f"bench-ceiling-{run_id}")
    print("ceiling beside the compaction: the same rows into the landing tables ...", flush=True)
    beside_s = append_ceiling_beside_compaction(bq, project, envelopes, f"bench-beside-{run_id}")
    return {
        "events": count,
        "rows": total,
        "rows_by_table": expected,
        "complete": compacted == total and landed == total,
        "landed": landed,
        "compacted": compacted,
        "publish_s": round(publish_s, 2),
        "append": {
            **append,
            "sustained_events_per_s": round(append["sustained_rows_per_s"] * events_per_row, 1),
            "drain_events_per_s": round(append["drain_rows_per_s"] * events_per_row, 1),
        },
        "compaction": {
            **compaction,
            "sustained_events_per_s": round(compaction["sustained_rows_per_s"] * events_per_row, 1),
        },
        "freshness_s": {
            "p50": round(percentile(lags, 0.5), 2),
            "p95": round(percentile(lags, 0.95), 2),
            "max": round(max(lags, default=0), 2),
            "samples": len(lags),
            "of": len(sample),
            "poll_interval_s": POLL_S,
        },
        "ceiling": {
            "seconds": round(ceiling_s, 2),
            "events_per_s": round(count / ceiling_s, 1),
            "rows_per_s": round(total / ceiling_s, 1),
        },
        "ceiling_beside_compaction": {
            "seconds": round(beside_s, 2),
            "events_per_s": round(count / beside_s, 1),
            "rows_per_s": round(total / beside_s, 1),
        },
        "cores_used_while_landing": cores,
        "series": series,
    }


def append_batches(
    bq: Any, refs: dict[str, str], envelopes: list[dict[str, Any]], retailer: str
) -> float:
    """Seconds the bare client takes to append the envelopes' landing rows into ``refs``,
    in the freezer's batches, one table after another."""
    batches = [
        rows_of(envelopes[i : i + BATCH_EVENTS], retailer)
        for i in range(0, len(envelopes), BATCH_EVENTS)
    ]
    started = time.monotonic()
    for tables in batches:
        landed_at = datetime.now(UTC).isoformat()
        for name, rows in tables.items():
            errors = bq.insert_rows_json(
                refs[name],
                [{**r, LANDED_AT.name: landed_at} for r in rows],
                row_ids=[None] * len(rows),
                timeout=60,
            )
            assert not errors, errors[:3]
    return time.monotonic() - started


def append_ceiling(
    bq: Any, project: str, scratch: str, envelopes: list[dict[str, Any]], retailer: str
) -> float:
    """The ceiling alone: the bare client into scratch copies of the landing tables, which
    no compaction reads."""
    from google.cloud import bigquery

    bq.create_dataset(bigquery.Dataset(f"{project}.{scratch}"), timeout=60)
    try:
        refs = {n: create_table(bq, project, t, scratch) for n, t in LANDINGS.items()}
        return append_batches(bq, refs, envelopes, retailer)
    finally:
        bq.delete_dataset(f"{project}.{scratch}", delete_contents=True, not_found_ok=True)


def append_ceiling_beside_compaction(
    bq: Any, project: str, envelopes: list[dict[str, Any]], retailer: str
) -> float:
    """The ceiling in the freezer's own conditions: the bare client into the landing tables
    themselves, under a fresh retailer, while the stack's compaction moves them into the
    read models (the freezer's appends share the one bqemulator with those MERGEs)."""
    refs = {n: f"{project}.{t.dataset}.{t.name}" for n, t in LANDINGS.items()}
    return append_batches(bq, refs, envelopes, retailer)


def compaction_cost(
    bq: Any, project: str, sizes: list[int], slice_rows: int, seed: int
) -> list[dict[str, Any]]:
    """Per read-model size M: one slice's MERGE (and its re-run) into a scratch page_views
    holding M rows over M / DAILY_ROWS days; the rows in the MERGE's partition bounds."""
    from google.cloud import bigquery

    from shared.freezer.bigquery_bulk_load import parquet_of
    from shared.freezer.bigquery_compaction import BigQuerySlices
    from shared.freezer.compaction import Slice

    declared = next(t for t in READ_MODELS if t.name == "page_views")
    landing = LANDINGS[declared.name]
    rng = random.Random(seed)
    results = []
    now = datetime.now(UTC).replace(microsecond=0)
    for size in sizes:
        scratch = f"bench_compaction_{uuid.uuid4().hex[:8]}"
        bq.create_dataset(bigquery.Dataset(f"{project}.{scratch}"), timeout=60)
        try:
            table = declared.model_copy(update={"dataset": scratch})
            scratch_landing = landing.model_copy(update={"dataset": scratch})
            ref = create_table(bq, project, table, scratch)
            landing_ref = create_table(bq, project, scratch_landing, scratch)
            days = max(1, -(-size // DAILY_ROWS))
            print(f"  M={size:,}: prefilling {days} day(s) ...", flush=True)
            fill_started = time.monotonic()
            for start in range(0, size, 100_000):
                n = min(100_000, size - start)
                rows = [
                    _page_view(
                        f"old-{start + i}", now - timedelta(days=1 + (start + i) % days), rng
                    )
                    for i in range(n)
                ]
                job = bq.load_table_from_file(
                    _bytes_io(parquet_of(table, rows)),
                    ref,
                    job_config=bigquery.LoadJobConfig(
                        source_format=bigquery.SourceFormat.PARQUET,
                        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                    ),
                )
                job.result(timeout=600)
            fill_s = time.monotonic() - fill_started
            landed_at = now - timedelta(seconds=30)
            fresh = [
                {
                    **_page_view(f"new-{i}", now - timedelta(minutes=rng.randint(1, 60)), rng),
                    LANDED_AT.name: landed_at.isoformat(),
                }
                for i in range(slice_rows)
            ]
            errors = bq.insert_rows_json(
                landing_ref, fresh, row_ids=[None] * len(fresh), timeout=120
            )
            assert not errors, errors[:3]
            slices = BigQuerySlices(
                bq, project, {declared.name: table}, {declared.name: scratch_landing}, 600.0
            )
            piece = Slice(declared.name, landed_at - timedelta(seconds=1), landed_at)
            merge_started = time.monotonic()
            inserted = slices.merge(piece)
            merge_s = time.monotonic() - merge_started
            rerun_started = time.monotonic()
            reinserted = slices.merge(piece)
            rerun_s = time.monotonic() - rerun_started
            low = min(r["occurred_at"] for r in fresh)
            high = max(r["occurred_at"] for r in fresh)
            in_bounds = _scalar(
                bq,
                f"SELECT COUNT(*) FROM `{ref}` WHERE occurred_at "  # noqa: S608
                "BETWEEN TIMESTAMP_TRUNC(@low, DAY) "
                "AND TIMESTAMP_ADD(TIMESTAMP_TRUNC(@high, DAY), INTERVAL 1 DAY)",
                [
                    bigquery.ScalarQueryParameter("low", "TIMESTAMP", low),
                    bigquery.ScalarQueryParameter("high", "TIMESTAMP", high),
                ],
            )
            total_after = _scalar(bq, f"SELECT COUNT(*) FROM `{ref}`")  # noqa: S608
            results.append(
                {
                    "read_model_rows": size,
                    "days": days,
                    "prefill_s": round(fill_s, 1),
                    "slice_rows": slice_rows,
                    "inserted": inserted,
                    "inserted_on_rerun": reinserted,
                    "rows_after": total_after,
                    "merge_s": round(merge_s, 2),
                    "rerun_s": round(rerun_s, 2),
                    "rows_in_bounded_partitions": in_bounds,
                }
            )
            print(
                f"  M={size:,}: MERGE {merge_s:.2f}s (re-run {rerun_s:.2f}s), inserted "
                f"{inserted} then {reinserted}; rows in its partitions {in_bounds:,}",
                flush=True,
            )
        finally:
            bq.delete_dataset(f"{project}.{scratch}", delete_contents=True, not_found_ok=True)
    return results


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def _page_view(key: str, occurred_at: datetime, rng: random.Random) -> dict[str, Any]:
    """A page_views row of the declared shape (the values are what a tracker sends)."""
    retailer = "bench-compaction"
    return {
        "row_id": f"{retailer}/{key}",
        "event_id": key,
        "retailer_id": retailer,
        "shopper_id": f"s{rng.randrange(100_000)}",
        "session_id": f"ss{rng.randrange(1_000_000)}",
        "occurred_at": occurred_at.isoformat(),
        "ingested_at": occurred_at.isoformat(),
        "page_type": rng.choice(["home", "product", "category", "search", "basket"]),
        "url": f"https://shop.example/p/{rng.randrange(92_000)}",
        "product_id": str(rng.randrange(92_000)),
        "category": None,
    }


def chart(series: list[tuple[float, int, int]], total: int, path: Path) -> None:
    """Landed and compacted rows over time (SVG, no dependency)."""
    width, height, left, bottom = 640, 240, 60, 30
    plot_w, plot_h = width - left - 10, height - bottom - 30
    end = max((s[0] for s in series), default=1.0) or 1.0

    def points(column: int) -> str:
        return " ".join(
            f"{left + plot_w * s[0] / end:.1f},{30 + plot_h * (1 - s[column] / total):.1f}"
            for s in series
        )

    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">'
        '<text x="60" y="16" font-size="13" font-weight="600">Cold path: rows landed and '
        "compacted over time</text>"
        f'<line x1="{left}" y1="{30 + plot_h}" x2="{left + plot_w}" y2="{30 + plot_h}" '
        'stroke="#999"/>'
        f'<text x="4" y="34" font-size="11">{total:,}</text>'
        f'<text x="4" y="{30 + plot_h}" font-size="11">0</text>'
        f'<text x="{left}" y="{height - 8}" font-size="11">0 s</text>'
        f'<text x="{left + plot_w - 40}" y="{height - 8}" font-size="11">{end:.0f} s</text>'
        f'<polyline fill="none" stroke="#457b9d" stroke-width="2" points="{points(1)}"/>'
        f'<polyline fill="none" stroke="#e63946" stroke-width="2" points="{points(2)}"/>'
        f'<text x="{left + 10}" y="48" font-size="11" fill="#457b9d">landed</text>'
        f'<text x="{left + 10}" y="62" font-size="11" fill="#e63946">compacted '
        "(queryable in the read models)</text></svg>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg + "\n")


def main(argv: list[str] | None = None) -> int:
    from shared.platform import clients

    parser = argparse.ArgumentParser(prog="bench.freeze", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--sizes", default="0,100000,400000", help="read-model rows (part 2)")
    parser.add_argument("--slice", type=int, default=2_000, help="landing rows per slice")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--chart", type=Path, default=CHART)
    parser.add_argument(
        "--pull-loops", type=int, help="the bench's freezer's FREEZER_PULL_LOOPS (default: its)"
    )
    args = parser.parse_args(argv)
    env = stack_env(StackSettings())
    project = env["GOOGLE_CLOUD_PROJECT"]
    bq = clients.bigquery_client(project, env["BIGQUERY_EMULATOR_HOST"])
    report: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    }
    report["stream"] = s = stream(env, bq, args.events, args.seed, args.timeout, args.pull_loops)
    chart(s["series"], s["rows"], args.chart)
    print("part 2: a compaction's cost against the read model's size ...", flush=True)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    report["compaction_cost"] = cost = compaction_cost(bq, project, sizes, args.slice, args.seed)
    with contextlib.suppress(Exception):
        bq.close()

    ceiling = s["ceiling"]["events_per_s"]
    appended = s["append"]["sustained_events_per_s"]
    print(f"\n{'':<44}{'events/s':>10}{'rows/s':>10}")
    print(
        f"{'append (Pub/Sub -> freezer -> landing)':<44}{appended:>10,.0f}"
        f"{s['append']['sustained_rows_per_s']:>10,.0f}"
    )
    print(
        f"{'compaction (landing -> read models)':<44}"
        f"{s['compaction']['sustained_events_per_s']:>10,.0f}"
        f"{s['compaction']['sustained_rows_per_s']:>10,.0f}"
    )
    print(
        f"{'ceiling (bare insert_rows_json, no Pub/Sub)':<44}{ceiling:>10,.0f}"
        f"{s['ceiling']['rows_per_s']:>10,.0f}"
    )
    drained = s["append"]["drain_events_per_s"]
    print(
        f"{'append, draining after the publisher stopped':<44}{drained:>10,.0f}"
        f"{s['append']['drain_rows_per_s']:>10,.0f}"
    )
    beside = s["ceiling_beside_compaction"]
    print(
        f"{'ceiling beside the compaction (same client)':<44}{beside['events_per_s']:>10,.0f}"
        f"{beside['rows_per_s']:>10,.0f}"
    )
    if ceiling:
        print(f"append / ceiling: {appended / ceiling:.0%} (draining: {drained / ceiling:.0%})")
        print(f"append / ceiling beside the compaction: {appended / beside['events_per_s']:.0%}")
    print(
        "CPU cores used until every row landed (of "
        f"{os.cpu_count()}): "
        + ", ".join(f"{k} {v}" for k, v in s["cores_used_while_landing"].items())
    )
    f = s["freshness_s"]
    print(
        f"freshness publish -> queryable: p50 {f['p50']}s  p95 {f['p95']}s  max {f['max']}s "
        f"(n={f['samples']}/{f['of']}, polled every {f['poll_interval_s']}s)"
    )
    print(f"\n{'read-model rows':>16}{'days':>6}{'MERGE s':>9}{'re-run s':>10}{'in bounds':>11}")
    for c in cost:
        print(
            f"{c['read_model_rows']:>16,}{c['days']:>6}{c['merge_s']:>9}{c['rerun_s']:>10}"
            f"{c['rows_in_bounded_partitions']:>11,}"
        )
    print(f"complete: {s['complete']}  ({report['machine']['date']}; chart {args.chart})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    exact = all(c["inserted"] == c["slice_rows"] and c["inserted_on_rerun"] == 0 for c in cost)
    return 0 if s["complete"] and exact else 1


if __name__ == "__main__":
    sys.exit(main())
