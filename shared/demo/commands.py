"""The demo's commands: ``cartwise demo`` (the whole story, ``shared/demo/story.py``) and
``cartwise session`` (one hand-written shopper session, and what each store holds)."""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.journey.options import household_sample, weeks
from shared.platform.terminal import use_stack_env


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
    from shared.ingestion.bigtable_events import read_prefix
    from shared.ingestion.service import shopper_prefix
    from shared.platform import clients
    from shared.system.resources import (
        BIGTABLE_INSTANCE,
        REJECTED_EVENTS_TABLE,
        SHOPPER_EVENTS_TABLE,
        SHOPPER_EVENTS_TOPIC,
    )

    env = use_stack_env()
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
    rows = read_prefix(instance.table(SHOPPER_EVENTS_TABLE), prefix.decode())
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

    rejected_rows = read_prefix(instance.table(REJECTED_EVENTS_TABLE), f"{retailer}#", limit=1)
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


def demo_command(args: argparse.Namespace) -> int:
    from shared.demo import story as demo_story

    env = use_stack_env()
    options = demo_story.DemoOptions(
        history_weeks=args.history_weeks,
        replay_weeks=args.replay_weeks,
        households=args.households or None,
        history_households=args.history_households or None,
        rate=args.rate,
        seed=args.seed,
        sample_seed=args.sample_seed,
        skip_history=args.skip_history,
        respond=not args.aa,
    )
    return demo_story.run(options, env).code


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``demo``, ``session``."""
    from shared.demo.story import DemoOptions
    from shared.journey.tracker_simulator import DEFAULT_SEED

    demo = subcommands.add_parser(
        "demo",
        help="the whole story: history, nightly, replay through the API, report (make demo)",
    )
    defaults = DemoOptions()
    demo.add_argument(
        "--history-weeks", type=weeks, default=defaults.history_weeks, help="default 1-44"
    )
    demo.add_argument(
        "--replay-weeks", type=weeks, default=defaults.replay_weeks, help="default 45-45"
    )
    demo.add_argument(
        "--households",
        type=household_sample,
        default=defaults.households,
        help=f"replayed households, a seeded sample (default {defaults.households}; 0: all)",
    )
    demo.add_argument(
        "--history-households",
        type=household_sample,
        default=defaults.history_households,
        help=f"a seeded sample of the history's households (default {defaults.history_households}"
        " of 2,469; 0: all)",
    )
    demo.add_argument(
        "--rate", type=float, default=defaults.rate, help=f"events/s (default {defaults.rate:g})"
    )
    demo.add_argument(
        "--skip-history", action="store_true", help="reuse the history and trees already loaded"
    )
    demo.add_argument(
        "--aa",
        action="store_true",
        help="the A/A replay: shoppers buy what they bought whatever they are shown (the "
        "default: they respond to it, a seeded model with effects stated up front, and the "
        "report sets the true uplift beside the measured one)",
    )
    demo.add_argument("--seed", type=int, default=DEFAULT_SEED)
    demo.add_argument(
        "--sample-seed",
        type=int,
        help="another sample of replayed households (a second run on the same stack: the "
        "same households' events are duplicates, refused as such)",
    )
    demo.set_defaults(run=demo_command)
    session = subcommands.add_parser(
        "session", help="send one shopper session through the stack and show every store"
    )
    session.set_defaults(run=lambda args: session_demo())
