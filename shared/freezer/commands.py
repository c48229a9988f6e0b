"""The freezer's commands: ``cartwise republish`` (a retailer's stored events again, after a
fix, skipping erased and suppressed shoppers) and ``cartwise redrive-dead-letters``
(dead-lettered messages back to the stream), ``cartwise migrate-row-ids`` (row ids with
their retailer, issue 20)."""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime

from shared.platform.terminal import environment, moment


def republish_command(retailer_id: str, since: datetime, until: datetime) -> int:
    from shared.freezer.republish import republish
    from shared.ingestion.bigtable_events import BigtableEventArchive
    from shared.ingestion.pubsub_publisher import PubSubEventPublisher
    from shared.platform import clients
    from shared.privacy.commands import suppressed_shoppers
    from shared.system.resources import BIGTABLE_INSTANCE, SHOPPER_EVENTS_TOPIC

    project = environment()
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

    from shared.freezer.pubsub_redrive import redrive
    from shared.platform import clients
    from shared.system.resources import SHOPPER_EVENTS_DEAD_LETTER_TOPIC, SHOPPER_EVENTS_TOPIC

    project = environment()
    subscriber = clients.subscriber_client()
    subscription = subscriber.subscription_path(
        project, f"{SHOPPER_EVENTS_DEAD_LETTER_TOPIC}-inspect"
    )
    run = redrive(
        subscriber,
        clients.publisher_api(),
        subscription,
        clients.topic_path(project, SHOPPER_EVENTS_TOPIC),
        max_messages,
    )
    print(f"re-drove {len(run.reasons)} dead-lettered messages to {SHOPPER_EVENTS_TOPIC}")
    for reason, count in Counter(run.reasons).most_common():
        print(f"  {count:>6}  {reason[:100]}")
    if run.copies:
        print(f"acknowledged {run.copies} more copies of them (one per consumer that set it aside)")
    if run.reached_newer:
        print("stopped at messages dead-lettered after the start (run again for those)")
    return 0


def migrate_row_ids_command() -> int:
    from shared.freezer.bigquery_read_models import migrate_row_ids
    from shared.platform import clients
    from shared.system.resources import RETAILER_ROW_ID_TABLES

    project = environment()
    client = clients.bigquery_client(project, os.environ.get("BIGQUERY_EMULATOR_HOST"))
    for table, n in migrate_row_ids(client, project, RETAILER_ROW_ID_TABLES).items():
        print(f"  {table:<24} {n:>10} rows given their retailer in row_id")
    return 0


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``republish``, ``redrive-dead-letters``."""
    republish = subcommands.add_parser(
        "republish", help="republish a retailer's stored events of a time range (after a fix)"
    )
    republish.add_argument("--retailer", required=True)
    republish.add_argument("--since", type=moment, required=True, help="ISO time")
    republish.add_argument("--until", type=moment, required=True, help="ISO time")
    republish.set_defaults(
        run=lambda args: republish_command(args.retailer, args.since, args.until)
    )
    redrive = subcommands.add_parser(
        "redrive-dead-letters", help="send dead-lettered messages back to the stream"
    )
    redrive.add_argument("--max", type=int, default=100_000)
    redrive.set_defaults(run=lambda args: redrive_command(args.max))
    migrate = subcommands.add_parser(
        "migrate-row-ids", help="prefix read-model row_ids with their retailer (once; idempotent)"
    )
    migrate.set_defaults(run=lambda args: migrate_row_ids_command())
