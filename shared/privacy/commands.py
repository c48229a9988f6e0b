"""The privacy commands: ``cartwise retention``, ``cartwise index-event-hours``; and the
suppression lookup that replays, backfills and republish run first
(``suppressed_shoppers``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from shared.platform.terminal import environment


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

    store = FirestoreRetention(clients.firestore_client(environment()), RETENTION)
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


def index_event_hours_command(retailer_id: str | None, batch_size: int) -> int:
    """Write the retention purge's ``event_hours`` index rows of events stored before the
    index existed (one pass over ``event_ids``; safe to rerun or interrupt)."""
    from shared.ingestion.bigtable_events import BigtableEventStore
    from shared.platform import clients
    from shared.system.resources import BIGTABLE_INSTANCE

    store = BigtableEventStore(clients.bigtable_client(environment()), BIGTABLE_INSTANCE)
    indexed = 0
    for pages, written in enumerate(store.backfill_hours(retailer_id, batch_size), start=1):
        indexed += written
        if pages % 100 == 0:
            print(f"  {indexed:,} events indexed", flush=True)
    scope = f"retailer {retailer_id}" if retailer_id else "every retailer"
    print(f"event_hours: {indexed:,} events indexed ({scope})")
    return 0


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``retention``, ``index-event-hours``."""
    retention = subcommands.add_parser(
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
    retention.set_defaults(run=lambda args: retention_command(args.retailer, args.set))
    index = subcommands.add_parser(
        "index-event-hours",
        help="index events stored before the purge's event_hours index (docs/PRIVACY.md)",
    )
    index.add_argument("--retailer", default=None, help="one retailer (default: all)")
    index.add_argument("--batch-size", type=int, default=1000)
    index.set_defaults(run=lambda args: index_event_hours_command(args.retailer, args.batch_size))
