"""The ``cartwise`` command line (README: the commands table)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.ingestion.service import shopper_prefix


def _stack_env() -> dict[str, str]:
    from emulators.config import StackSettings

    path = StackSettings().env_file
    if not path.exists():
        sys.exit("the local stack is not running: `make up` first (or `make demo`)")
    env = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    if not env.get("GOOGLE_CLOUD_PROJECT", "").startswith("demo-"):
        sys.exit("refusing to run the demo outside a demo- project")
    return env


def _post(
    url: str, api_key: str, events: list[dict[str, Any]]
) -> tuple[int, dict[str, Any], float]:
    request = urllib.request.Request(  # noqa: S310 - loopback URL from stack.env
        f"{url}/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"Content-Type": "application/json", "X-Api-Key": api_key},
        method="POST",
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, body = response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        status, body = exc.code, json.loads(exc.read())
    return status, body, (time.perf_counter() - started) * 1000


def demo_session(shopper_id: str, start: datetime) -> list[dict[str, Any]]:
    """One shopper's visit: browse, search, fill the basket, change their mind, pay."""
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    at = iter(start + timedelta(seconds=20 * i) for i in range(100))

    def event(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "shopper_id": shopper_id,
            "session_id": session_id,
            "occurred_at": next(at).isoformat(),
            "schema_version": 1,
            "payload": payload,
        }

    pasta = {"product_id": "p-1001", "brand": "Barilla", "category": "PASTA"}
    sauce = {"product_id": "p-2002", "brand": "Bertolli", "category": "PASTA SAUCE"}
    cheese = {"product_id": "p-3003", "brand": "Galbani", "category": "CHEESE"}
    return [
        event("page_viewed", {"url": "/", "page_type": "home"}),
        event("search_performed", {"query": "spaghetti", "result_count": 24}),
        event("page_viewed", {"url": "/p/1001", "page_type": "product", "product_id": "p-1001"}),
        event("product_added_to_basket", {**pasta, "quantity": 2, "unit_price": "1.49"}),
        event("product_added_to_basket", {**sauce, "quantity": 1, "unit_price": "2.99"}),
        event("product_removed_from_basket", {**sauce, "quantity": 1, "unit_price": "2.99"}),
        event("product_added_to_basket", {**cheese, "quantity": 1, "unit_price": "3.20"}),
        event(
            "cart_validated",
            {
                "order_id": f"o-{uuid.uuid4().hex[:8]}",
                "total": "6.18",
                "lines": [
                    {**pasta, "quantity": 2, "unit_price": "1.49"},
                    {**cheese, "quantity": 1, "unit_price": "3.20"},
                ],
            },
        ),
        # A tracker that leaks personal data: refused with its reason, kept for inspection.
        event("page_viewed", {"url": "/account", "page_type": "account", "email": "x@y.org"}),
    ]


def session_demo() -> int:
    from shared.platform import clients
    from shared.system.resources import (
        BIGTABLE_INSTANCE,
        REJECTED_EVENTS_TABLE,
        SHOPPER_EVENTS_TABLE,
        SHOPPER_EVENTS_TOPIC,
    )

    env = _stack_env()
    os.environ.update(env)
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)
    project, retailer = env["GOOGLE_CLOUD_PROJECT"], env["DEMO_RETAILER_ID"]
    subscriber = clients.subscriber_client()
    tap = subscriber.subscription_path(project, f"demo-tap-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(
        request={
            "name": tap,
            "topic": f"projects/{project}/topics/{SHOPPER_EVENTS_TOPIC}",
            "enable_message_ordering": True,
        },
        timeout=10,
    )
    shopper = f"demo-{uuid.uuid4().hex[:6]}"
    events = demo_session(shopper, datetime.now(UTC) - timedelta(minutes=5))
    print(
        f"\n== 1. A tracker sends {len(events)} events of shopper {shopper} "
        f"to {env['INGEST_URL']}/v1/events"
    )
    status, body, ms = _post(env["INGEST_URL"], env["DEMO_API_KEY"], events)
    print(
        f"   HTTP {status} in {ms:.0f} ms: accepted {body['accepted']}, "
        f"duplicates {body['duplicate_count']}, rejected {body['rejected_count']}"
    )
    for item in body["rejected"]:
        reasons = "; ".join(f"{r['field']}: {r['code']}" for r in item["reasons"])
        print(f"   rejected event #{item['index']}: {reasons}")
    print("\n== 2. The tracker retries the same request (a flaky network): nothing is doubled")
    status, body, ms = _post(env["INGEST_URL"], env["DEMO_API_KEY"], events[:-1])
    print(
        f"   HTTP {status} in {ms:.0f} ms: accepted {body['accepted']}, "
        f"duplicates {body['duplicate_count']}"
    )

    instance = clients.bigtable_client(project).instance(BIGTABLE_INSTANCE)
    prefix = shopper_prefix(retailer, shopper).encode()
    rows = list(
        instance.table(SHOPPER_EVENTS_TABLE).read_rows(row_set=_prefix_set(prefix.decode()))
    )
    print(
        f"\n== 3. Bigtable `{SHOPPER_EVENTS_TABLE}`: {len(rows)} rows under the shopper's "
        f"prefix {prefix.decode()!r} (newest first)"
    )
    for row in rows:
        message = json.loads(row.cells["event"][b"message"][0].value)
        print(
            f"   {message['event']['occurred_at'][11:19]}  {message['event']['type']:<28}"
            f" {row.row_key.decode()[len(prefix) :][:40]}..."
        )

    received: list[Any] = []
    deadline = time.monotonic() + 10
    while len(received) < len(rows) and time.monotonic() < deadline:
        response = subscriber.pull(subscription=tap, max_messages=50, timeout=5)
        received.extend(m.message for m in response.received_messages)
        if response.received_messages:
            subscriber.acknowledge(
                subscription=tap, ack_ids=[m.ack_id for m in response.received_messages]
            )
    print(
        f"\n== 4. Pub/Sub `{SHOPPER_EVENTS_TOPIC}`: {len(received)} messages, "
        f"ordering key {received[0].ordering_key if received else '-'!r}"
    )
    for message in received[:3]:
        print(f"   attributes {dict(message.attributes)}")
    subscriber.delete_subscription(subscription=tap, timeout=10)

    rejected_rows = list(
        instance.table(REJECTED_EVENTS_TABLE).read_rows(
            row_set=_prefix_set(f"{retailer}#"), limit=1
        )
    )
    print(f"\n== 5. Bigtable `{REJECTED_EVENTS_TABLE}` keeps the refused input with its reasons")
    for row in rejected_rows:
        cells = row.cells["rejected"]
        print(f"   reasons {cells[b'reasons'][0].value.decode()}")
    expected_rows = _expected_rows(retailer, events[:-1])
    frozen = _frozen_rows(env, shopper, expected_rows, wait_s=60)
    print(
        f"\n== 6. BigQuery read models (the freezer): {sum(frozen.values())} rows for the "
        f"shopper ({expected_rows} expected)"
    )
    for table, count in sorted(frozen.items()):
        print(f"   cartwise.{table:<22} {count}")
    print("\nThe stack keeps running: `make status` to check it, `make down` to stop it.")
    print(f"OpenAPI: {env['INGEST_URL']}/openapi.json")
    accepted = len(events) - 1
    complete = accepted == len(rows) == len(received) and sum(frozen.values()) == expected_rows
    return 0 if complete else 1


def _expected_rows(retailer: str, events: list[dict[str, Any]]) -> int:
    from shared.contract.events import validate_event
    from shared.freezer.read_models import rows_for

    total = 0
    for raw in events:
        event = validate_event(raw)
        assert not isinstance(event, list), event
        total += sum(len(r) for r in rows_for(retailer, event, datetime.now(UTC)).values())
    return total


def _frozen_rows(
    env: dict[str, str], shopper: str, expected_rows: int, wait_s: float
) -> dict[str, int]:
    """Rows of ``shopper`` per read model, once the freezer has written them all."""
    from shared.freezer.bigquery_read_models import count_rows
    from shared.freezer.read_models import READ_MODELS
    from shared.platform import clients

    project = env["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, env["BIGQUERY_EMULATOR_HOST"])
    counts: dict[str, int] = {}
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        counts = {
            t: n
            for t, n in count_rows(client, project, READ_MODELS, "shopper_id", shopper).items()
            if n
        }
        if sum(counts.values()) >= expected_rows:
            break
        time.sleep(0.5)
    return counts


def _prefix_set(prefix: str) -> Any:
    from google.cloud.bigtable.row_set import RowSet

    row_set = RowSet()
    row_set.add_row_range_with_prefix(prefix)
    return row_set


def _environment() -> str:
    """The project to work on: the local stack's when it runs, else GOOGLE_CLOUD_PROJECT."""
    from emulators.config import StackSettings

    if StackSettings().env_file.exists():
        os.environ.update(_stack_env())
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        sys.exit("set GOOGLE_CLOUD_PROJECT, or start the local stack (`make up`)")
    return project


def suppressed_shoppers(project: str, retailers: tuple[str, ...] | list[str]) -> Any:
    """The erased and suppressed shoppers of these retailers (replays and backfills skip
    them); needs the shopper hash key (``SHOPPER_HASH_KEY``, in the local stack.env)."""
    from shared.platform import clients
    from shared.privacy.firestore_records import FirestoreSuppressionList
    from shared.privacy.service import KnownSuppressions

    key = os.environ.get("SHOPPER_HASH_KEY", "")
    if len(key) < 16:
        sys.exit(
            "set SHOPPER_HASH_KEY (Secret Manager shopper-hash-key; the local stack writes "
            "it in .local/stack.env): replays and backfills must skip erased shoppers"
        )
    known = KnownSuppressions.load(
        FirestoreSuppressionList(clients.firestore_client(project)), key.encode(), retailers
    )
    if len(known):
        print(f"skipping {len(known)} erased or suppressed shoppers", flush=True)
    return known


def retention_command(retailer_id: str, settings: list[str]) -> int:
    from shared.platform import clients
    from shared.privacy.firestore_records import FirestoreRetention
    from shared.privacy.retention import RetentionError, periods
    from shared.system.resources import RETENTION

    store = FirestoreRetention(clients.firestore_client(_environment()), RETENTION)
    days: dict[str, int] = {}
    for item in settings:
        name, _, value = item.partition("=")
        if not value.isdigit():
            print(f"--set {item!r}: expected CLASS=DAYS", file=sys.stderr)
            return 2
        days[name] = int(value)
    try:
        current = store.set(retailer_id, days) if days else store.retention(retailer_id)
    except RetentionError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    for data_class, period in periods(RETENTION, current).items():
        origin = "contract" if data_class in current.days else "default"
        ceiling = RETENTION.ceiling_days[data_class]
        print(f"  {data_class.value:<12} {period:>5} days ({origin}; ceiling {ceiling})")
    return 0


def republish_command(retailer_id: str, since: datetime, until: datetime) -> int:
    from shared.freezer.republish import republish
    from shared.ingestion.bigtable_events import BigtableEventArchive
    from shared.ingestion.pubsub_publisher import PubSubEventPublisher
    from shared.platform import clients
    from shared.system.resources import BIGTABLE_INSTANCE, SHOPPER_EVENTS_TOPIC

    project = _environment()
    archive = BigtableEventArchive(clients.bigtable_client(project).instance(BIGTABLE_INSTANCE))
    publisher = PubSubEventPublisher(
        clients.publisher_api(), clients.topic_path(project, SHOPPER_EVENTS_TOPIC)
    )
    started = time.monotonic()
    sent = republish(
        archive,
        publisher,
        retailer_id,
        since,
        until,
        progress=lambda n: print(f"\r  republished {n} events", end="", flush=True),
        skip=suppressed_shoppers(project, [retailer_id]),
    )
    print(
        f"\nrepublished {sent} events of {retailer_id} from {since} to {until} "
        f"in {time.monotonic() - started:.1f}s"
    )
    return 0


def redrive_command(max_messages: int) -> int:
    from collections import Counter

    from google.pubsub_v1.types import PubsubMessage

    from shared.freezer.republish import clean_attributes
    from shared.platform import clients
    from shared.system.resources import SHOPPER_EVENTS_DEAD_LETTER_TOPIC, SHOPPER_EVENTS_TOPIC

    project = _environment()
    subscriber = clients.subscriber_client()
    publisher = clients.publisher_api()
    subscription = subscriber.subscription_path(
        project, f"{SHOPPER_EVENTS_DEAD_LETTER_TOPIC}-inspect"
    )
    topic = clients.topic_path(project, SHOPPER_EVENTS_TOPIC)
    reasons: list[str] = []
    while len(reasons) < max_messages:
        response = subscriber.pull(
            subscription=subscription,
            max_messages=min(500, max_messages - len(reasons)),
            timeout=30,
        )
        received = response.received_messages
        if not received:
            break
        publisher.publish(
            topic=topic,
            messages=[
                PubsubMessage(
                    data=m.message.data, attributes=clean_attributes(dict(m.message.attributes))
                )
                for m in received
            ],
            timeout=30,
        )
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in received])
        reasons += [m.message.attributes.get("dead_letter_reason", "-") for m in received]
    print(f"re-drove {len(reasons)} dead-lettered messages to {SHOPPER_EVENTS_TOPIC}")
    for reason, count in Counter(reasons).most_common():
        print(f"  {count:>6}  {reason[:100]}")
    return 0


# --- the Complete Journey: replay over HTTP, backfill into the read models ---------------


def _simulation(args: argparse.Namespace) -> Any:
    from shared.journey.tracker_simulator import Simulation, default_shift_weeks

    shift = args.shift_weeks
    if shift is None:
        shift = default_shift_weeks(datetime.now(UTC))
    return Simulation(seed=args.seed, shift_weeks=shift)


def replay_api_keys(env: dict[str, str], retailers: tuple[str, ...]) -> dict[str, str]:
    """The simulated retailers' keys on the local stack: chosen once, registered each run."""
    from emulators.config import StackSettings
    from shared.platform.clients import firestore_client
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.keys import new_api_key, register_api_key

    path = StackSettings().local_dir / "replay-api-keys.json"
    keys: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    for retailer in retailers:
        keys.setdefault(retailer, new_api_key())
    path.write_text(json.dumps(keys, indent=1))
    path.chmod(0o600)
    store = FirestoreApiKeyStore(firestore_client(env["GOOGLE_CLOUD_PROJECT"]))
    for retailer in retailers:
        register_api_key(store, retailer, keys[retailer], datetime.now(UTC))
    return {retailer: keys[retailer] for retailer in retailers}


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "." * (width - filled) + f"] {done:,}/{total:,}"


def replay_command(args: argparse.Namespace) -> int:
    from shared.journey import dataset as journey
    from shared.journey.http_event_api import HttpEventApi
    from shared.journey.replay import ReplaySummary, batches, replay
    from shared.journey.tracker_simulator import sessions, without_shoppers

    env = _stack_env()
    os.environ.update(env)
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)
    simulation = _simulation(args)
    households = journey.sample_households(args.weeks, args.households, simulation.seed)
    now = datetime.now(UTC)
    print(
        f"replaying weeks {args.weeks[0]}-{args.weeks[1]} of the Complete Journey"
        f"{f' ({len(households)} households)' if households is not None else ''} "
        f"to {env['INGEST_URL']}: seed {simulation.seed}, shifted {simulation.shift_weeks} "
        f"weeks, {'as fast as possible' if not args.rate else f'{args.rate:,.0f} events/s'}",
        flush=True,
    )
    baskets = list(journey.baskets(args.weeks, households))
    api = HttpEventApi(env["INGEST_URL"], replay_api_keys(env, simulation.retailers))

    def progress(s: ReplaySummary) -> None:
        print(
            f"\r  {_bar(s.sessions, len(baskets))} sessions  sent {s.sent:,}  accepted "
            f"{s.accepted:,}  duplicates {s.duplicates:,}  rejected {s.rejected:,}  "
            f"retries {s.retries:,}  {s.events_per_s:,.0f} events/s  "
            f"p95 {s.latency_ms(0.95):,.0f} ms ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    skip = suppressed_shoppers(env["GOOGLE_CLOUD_PROJECT"], simulation.retailers)
    summary = replay(
        batches(
            without_shoppers(sessions(baskets, journey.products(), simulation, now), skip),
            args.batch,
        ),
        api,
        concurrency=args.concurrency,
        rate=args.rate,
        progress=progress,
    )
    print(file=sys.stderr)
    result = summary.as_dict()
    print(json.dumps({"weeks": list(args.weeks), **result}, indent=1))
    return 0 if summary.failed_batches == 0 else 1


def backfill_command(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from shared.freezer.bigquery_bulk_load import BigQueryBulkLoader
    from shared.freezer.read_models import READ_MODELS
    from shared.journey import dataset as journey
    from shared.journey.backfill import BackfillSummary, load
    from shared.platform import clients

    project = _environment()
    simulation = _simulation(args)
    households = journey.sample_households(args.weeks, args.households, simulation.seed)
    now = datetime.now(UTC)
    loader = BigQueryBulkLoader(
        clients.bigquery_client(project, os.environ.get("BIGQUERY_EMULATOR_HOST")),
        project,
        READ_MODELS,
        dataset=args.dataset,
    )
    weeks = list(range(args.weeks[0], args.weeks[1] + 1))
    print(
        f"backfilling weeks {weeks[0]}-{weeks[-1]} into the read models of {project} "
        f"({args.workers} workers; seed {simulation.seed}, shifted "
        f"{simulation.shift_weeks} weeks)",
        flush=True,
    )
    summary = BackfillSummary()
    started = time.monotonic()
    skip = suppressed_shoppers(project, simulation.retailers)
    jobs = [(week, households, simulation, now, skip) for week in weeks]
    with ProcessPoolExecutor(args.workers) as pool:
        for done, (tables, part) in enumerate(pool.map(_transform_week, jobs), start=1):
            summary.sessions += part.sessions
            summary.events += part.events
            summary.invalid += part.invalid
            summary.rows.update(part.rows)
            load(tables, loader, summary)
            elapsed = time.monotonic() - started
            print(
                f"\r  {_bar(done, len(weeks))} weeks  {summary.events:,} events  "
                f"{sum(summary.rows.values()):,} rows ({sum(summary.inserted.values()):,} new)  "
                f"{summary.events / elapsed:,.0f} events/s ",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {
                "weeks": [weeks[0], weeks[-1]],
                "sessions": summary.sessions,
                "events": summary.events,
                "invalid_events": summary.invalid,
                "rows": dict(sorted(summary.rows.items())),
                "inserted": dict(sorted(summary.inserted.items())),
                "seconds": round(elapsed, 1),
                "events_per_s": round(summary.events / elapsed, 1),
            },
            indent=1,
        )
    )
    return 0 if summary.invalid == 0 else 1


def _transform_week(
    job: tuple[int, frozenset[int] | None, Any, datetime, Any],
) -> tuple[Any, Any]:
    from shared.journey import dataset as journey
    from shared.journey.backfill import BackfillSummary, transform
    from shared.journey.tracker_simulator import sessions, without_shoppers

    week, households, simulation, now, skip = job
    summary = BackfillSummary()
    baskets = journey.baskets((week, week), households)
    simulated = sessions(baskets, journey.products(), simulation, now)
    tables = transform(without_shoppers(simulated, skip), now, summary)
    return tables, summary


def import_campaigns_command(args: argparse.Namespace) -> int:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.freezer.bigquery_bulk_load import BigQueryBulkLoader
    from shared.journey.campaigns import JOURNEY_TABLES, import_campaigns
    from shared.platform import clients

    project = _environment()
    simulation = _simulation(args)
    imported = import_campaigns(simulation, datetime.now(UTC))
    store = FirestoreCampaignStore(clients.firestore_client(project))
    for campaign in imported.campaigns:
        store.put(campaign)
    loader = BigQueryBulkLoader(
        clients.bigquery_client(project, os.environ.get("BIGQUERY_EMULATOR_HOST")),
        project,
        JOURNEY_TABLES,
    )
    inserted = {table: loader.load(table, rows) for table, rows in imported.history.items()}
    print(
        json.dumps(
            {
                "campaigns": len(imported.campaigns),
                "shift_weeks": simulation.shift_weeks,
                "history_rows": {t: len(rows) for t, rows in imported.history.items()},
                "inserted": inserted,
            },
            indent=1,
        )
    )
    return 0


def compile_trees_command(args: argparse.Namespace) -> int:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.decisions.bigtable_state import BigtableTrees
    from shared.decisions.compiler import compile_default_tree
    from shared.platform import clients
    from shared.system.resources import BIGTABLE_INSTANCE

    project = _environment()
    now = datetime.now(UTC)
    campaigns = FirestoreCampaignStore(clients.firestore_client(project)).active()
    retailers = sorted({r for c in campaigns for r in c.retailer_ids} | set(args.retailer or []))
    trees = [compile_default_tree(retailer, campaigns, now) for retailer in retailers]
    BigtableTrees(clients.bigtable_client(project), BIGTABLE_INSTANCE).put(trees)
    for tree in trees:
        print(
            f"{tree.retailer_id}: default tree {tree.tree_version}, "
            f"{len(tree.campaigns)} live campaigns, {len(tree.nodes)} nodes, "
            f"{len(tree.serialize()):,} bytes, valid until {tree.valid_until:%Y-%m-%d %H:%M}"
        )
    return 0


def report_command(args: argparse.Namespace) -> int:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.campaigns.report import campaign_report, format_report
    from shared.freezer.read_models import DATASET
    from shared.platform import clients
    from shared.platform.bigquery_warehouse import BigQueryWarehouse

    project = _environment()
    campaign = FirestoreCampaignStore(clients.firestore_client(project)).get(args.campaign)
    if campaign is None:
        print(f"no campaign {args.campaign}", file=sys.stderr)
        return 1
    bigquery = clients.bigquery_client(project, os.environ.get("BIGQUERY_EMULATOR_HOST"))
    warehouse = BigQueryWarehouse(bigquery, project, DATASET, ())
    report = campaign_report(campaign, warehouse, project, DATASET, datetime.now(UTC))
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def csm_key_command(args: argparse.Namespace) -> int:
    from shared.campaigns.admin import issue_csm_key
    from shared.campaigns.firestore_admin import FirestoreCsmAccounts
    from shared.platform import clients

    project = _environment()
    try:
        key = issue_csm_key(
            FirestoreCsmAccounts(clients.firestore_client(project)),
            args.csm_id,
            args.role,
            args.retailer,
            datetime.now(UTC),
        )
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(key)
    return 0


# --- the nightly run ------------------------------------------------------------------


def format_table(rows: Any) -> str:
    """The evaluation table: a list of row maps as aligned columns; text as it is."""
    if isinstance(rows, str):
        return rows
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return json.dumps(rows, indent=1, default=str)
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return "" if value is None else str(value)

    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _brief(summary: dict[str, Any] | None) -> str:
    if not summary:
        return ""
    skip = {"step", "run_id", "seconds", "table", "compiled_at", "valid_until", "retailers"}
    shown = {k: v for k, v in summary.items() if k not in skip and not isinstance(v, dict | list)}
    return ", ".join(f"{k} {v}" for k, v in list(shown.items())[:8])


def nightly_command(args: argparse.Namespace) -> int:
    import threading

    env = _stack_env()
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


def _weeks(text: str) -> tuple[int, int]:
    from shared.journey.dataset import parse_weeks

    try:
        return parse_weeks(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _journey_options(parser: argparse.ArgumentParser) -> None:
    from shared.journey.tracker_simulator import DEFAULT_SEED

    parser.add_argument("--weeks", type=_weeks, required=True, help="e.g. 1-2 (of 1-53)")
    parser.add_argument("--households", type=int, help="a seeded sample of this many households")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--shift-weeks",
        type=int,
        help="weeks added to the data set's 2017 times (default: the most that keep them past)",
    )


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def demo_command(args: argparse.Namespace) -> int:
    from shared.demo import story as demo_story

    env = _stack_env()
    os.environ.update(env)
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)
    options = demo_story.DemoOptions(
        history_weeks=args.history_weeks,
        replay_weeks=args.replay_weeks,
        households=args.households or None,
        history_households=args.history_households or None,
        rate=args.rate,
        seed=args.seed,
        sample_seed=args.sample_seed,
        skip_history=args.skip_history,
    )
    return demo_story.run(options, env).code


def main(argv: list[str] | None = None) -> int:
    from shared.demo.story import DemoOptions
    from shared.journey.tracker_simulator import DEFAULT_SEED

    parser = argparse.ArgumentParser(prog="cartwise")
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo",
        help="the whole story: history, nightly, replay through the API, report (make demo)",
    )
    defaults = DemoOptions()
    demo_parser.add_argument(
        "--history-weeks", type=_weeks, default=defaults.history_weeks, help="default 1-44"
    )
    demo_parser.add_argument(
        "--replay-weeks", type=_weeks, default=defaults.replay_weeks, help="default 45-45"
    )
    demo_parser.add_argument(
        "--households",
        type=int,
        default=defaults.households,
        help=f"replayed households, a seeded sample (default {defaults.households}; 0: all)",
    )
    demo_parser.add_argument(
        "--history-households",
        type=int,
        default=defaults.history_households,
        help=f"a seeded sample of the history's households (default {defaults.history_households}"
        " of 2,469; 0: all)",
    )
    demo_parser.add_argument(
        "--rate", type=float, default=defaults.rate, help=f"events/s (default {defaults.rate:g})"
    )
    demo_parser.add_argument(
        "--skip-history", action="store_true", help="reuse the history and trees already loaded"
    )
    demo_parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    demo_parser.add_argument(
        "--sample-seed",
        type=int,
        help="another sample of replayed households (a second run on the same stack: the "
        "same households' events are duplicates, refused as such)",
    )
    commands.add_parser(
        "session", help="send one shopper session through the stack and show every store"
    )
    republish = commands.add_parser(
        "republish", help="republish a retailer's stored events of a time range (after a fix)"
    )
    republish.add_argument("--retailer", required=True)
    republish.add_argument("--since", type=_moment, required=True, help="ISO time")
    republish.add_argument("--until", type=_moment, required=True, help="ISO time")
    replay_parser = commands.add_parser(
        "replay", help="send Complete Journey weeks through the ingest API, as trackers"
    )
    _journey_options(replay_parser)
    replay_parser.add_argument("--rate", type=float, help="events/s (default: as fast as possible)")
    replay_parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    replay_parser.add_argument("--batch", type=int, default=500, help="events per request")
    backfill_parser = commands.add_parser(
        "backfill", help="load Complete Journey weeks straight into the read models"
    )
    _journey_options(backfill_parser)
    backfill_parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    backfill_parser.add_argument("--dataset", help="another dataset with the same tables")
    campaigns_parser = commands.add_parser(
        "import-campaigns", help="the Complete Journey's campaigns, and what really happened"
    )
    campaigns_parser.add_argument("--seed", type=int, default=8451)
    campaigns_parser.add_argument("--shift-weeks", type=int, help="as for replay and backfill")
    compile_parser = commands.add_parser(
        "compile-trees", help="compile each retailer's default tree from its live campaigns"
    )
    compile_parser.add_argument(
        "--retailer", action="append", help="also compile this retailer (even with none live)"
    )
    nightly = commands.add_parser(
        "nightly",
        help="run the nightly workflow on the local workflows emulator (docs/NIGHTLY.md)",
    )
    nightly.add_argument("--run-id", help="default: nightly-YYYYmmdd-HHMMSS")
    nightly.add_argument(
        "--cutoff", help="YYYY-MM-DD, the last day learnt from (default: yesterday)"
    )
    nightly.add_argument("--json", action="store_true", help="also print the whole summary")
    report_parser = commands.add_parser(
        "report", help="a campaign's performance, computed in BigQuery (docs/CAMPAIGNS.md)"
    )
    report_parser.add_argument("campaign", help="the campaign id, e.g. cj-18")
    report_parser.add_argument("--json", action="store_true", help="the API's JSON document")
    csm = commands.add_parser("csm-key", help="issue a back-office access key (printed once)")
    csm.add_argument("--csm-id", required=True)
    csm.add_argument("--role", choices=("admin", "csm", "analyst"), required=True)
    csm.add_argument(
        "--retailer", action="append", help="scope (repeat); required for the csm role"
    )
    redrive = commands.add_parser(
        "redrive-dead-letters", help="send dead-lettered messages back to the stream"
    )
    redrive.add_argument("--max", type=int, default=100_000)
    retention = commands.add_parser(
        "retention", help="show or set a retailer's retention periods (docs/PRIVACY.md)"
    )
    retention.add_argument("--retailer", required=True)
    retention.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="CLASS=DAYS",
        help="e.g. raw_events=365 (repeatable; never over the class's ceiling)",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo_command(args)
    if args.command == "session":
        return session_demo()
    if args.command == "republish":
        return republish_command(args.retailer, args.since, args.until)
    if args.command == "replay":
        return replay_command(args)
    if args.command == "backfill":
        return backfill_command(args)
    if args.command == "import-campaigns":
        return import_campaigns_command(args)
    if args.command == "compile-trees":
        return compile_trees_command(args)
    if args.command == "nightly":
        return nightly_command(args)
    if args.command == "report":
        return report_command(args)
    if args.command == "csm-key":
        return csm_key_command(args)
    if args.command == "redrive-dead-letters":
        return redrive_command(args.max)
    if args.command == "retention":
        return retention_command(args.retailer, args.set)
    return 2


if __name__ == "__main__":
    sys.exit(main())
