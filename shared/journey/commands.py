"""The Complete Journey's commands: ``cartwise replay`` (over HTTP, as trackers),
``cartwise backfill`` (straight into the read models) and ``cartwise import-campaigns``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from shared.journey.options import journey_options, simulation
from shared.journey.replay_keys import replay_api_keys
from shared.platform.terminal import bar, environment, use_stack_env


def replay_command(args: argparse.Namespace) -> int:
    from shared.journey import dataset as journey
    from shared.journey.http_event_api import HttpEventApi
    from shared.journey.replay import ReplaySummary, batches, replay
    from shared.journey.tracker_simulator import sessions, without_shoppers
    from shared.privacy.commands import suppressed_shoppers

    env = use_stack_env()
    sim = simulation(args)
    households = journey.sample_households(args.weeks, args.households, sim.seed)
    now = datetime.now(UTC)
    print(
        f"replaying weeks {args.weeks[0]}-{args.weeks[1]} of the Complete Journey"
        f"{f' ({len(households)} households)' if households is not None else ''} "
        f"to {env['INGEST_URL']}: seed {sim.seed}, shifted {sim.shift_weeks} "
        f"weeks, {'as fast as possible' if not args.rate else f'{args.rate:,.0f} events/s'}",
        flush=True,
    )
    baskets = list(journey.baskets(args.weeks, households))
    api = HttpEventApi(env["INGEST_URL"], replay_api_keys(env, sim.retailers))

    def progress(s: ReplaySummary) -> None:
        print(
            f"\r  {bar(s.sessions, len(baskets))} sessions  sent {s.sent:,}  accepted "
            f"{s.accepted:,}  duplicates {s.duplicates:,}  rejected {s.rejected:,}  "
            f"retries {s.retries:,}  {s.events_per_s:,.0f} events/s  "
            f"p95 {s.latency_ms(0.95):,.0f} ms ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    skip = suppressed_shoppers(env["GOOGLE_CLOUD_PROJECT"], sim.retailers)
    summary = replay(
        batches(
            without_shoppers(sessions(baskets, journey.products(), sim, now), skip),
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
    from shared.privacy.commands import suppressed_shoppers

    project = environment()
    sim = simulation(args)
    households = journey.sample_households(args.weeks, args.households, sim.seed)
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
        f"({args.workers} workers; seed {sim.seed}, shifted "
        f"{sim.shift_weeks} weeks)",
        flush=True,
    )
    summary = BackfillSummary()
    started = time.monotonic()
    skip = suppressed_shoppers(project, sim.retailers)
    jobs = [(week, households, sim, now, skip) for week in weeks]
    with ProcessPoolExecutor(args.workers) as pool:
        for done, (tables, part) in enumerate(pool.map(_transform_week, jobs), start=1):
            summary.sessions += part.sessions
            summary.events += part.events
            summary.invalid += part.invalid
            summary.rows.update(part.rows)
            load(tables, loader, summary)
            elapsed = time.monotonic() - started
            print(
                f"\r  {bar(done, len(weeks))} weeks  {summary.events:,} events  "
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

    week, households, sim, now, skip = job
    summary = BackfillSummary()
    baskets = journey.baskets((week, week), households)
    simulated = sessions(baskets, journey.products(), sim, now)
    tables = transform(without_shoppers(simulated, skip), now, summary)
    return tables, summary


def import_campaigns_command(args: argparse.Namespace) -> int:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.freezer.bigquery_bulk_load import BigQueryBulkLoader
    from shared.journey.campaigns import JOURNEY_TABLES, import_campaigns
    from shared.platform import clients
    from shared.privacy.commands import suppressed_shoppers

    project = environment()
    sim = simulation(args)
    imported = import_campaigns(sim, datetime.now(UTC), suppressed_shoppers(project, sim.retailers))
    store = FirestoreCampaignStore(clients.firestore_client(project))
    for campaign in imported.campaigns:
        store.put(campaign)
    bigquery = clients.bigquery_client(project, os.environ.get("BIGQUERY_EMULATOR_HOST"))
    unscoped = drop_rows_without_retailer(bigquery, project, JOURNEY_TABLES)
    loader = BigQueryBulkLoader(bigquery, project, JOURNEY_TABLES)
    inserted = {table: loader.load(table, rows) for table, rows in imported.history.items()}
    print(
        json.dumps(
            {
                "campaigns": len(imported.campaigns),
                "shift_weeks": sim.shift_weeks,
                "history_rows": {t: len(rows) for t, rows in imported.history.items()},
                "inserted": inserted,
                "replaced_rows_without_retailer": unscoped,
            },
            indent=1,
        )
    )
    return 0


def drop_rows_without_retailer(client: Any, project: str, tables: Any) -> dict[str, int]:
    """Rows an import wrote before the journey tables had ``retailer_id`` (a stack saved
    then; ``make up`` added the column): no erasure or purge can scope them to a retailer,
    so they go, and this import writes them again with their retailer."""
    deleted = {}
    for table in tables:
        job = client.query(
            f"DELETE FROM `{project}.{table.dataset}.{table.name}` WHERE retailer_id IS NULL"  # noqa: S608
        )
        job.result(timeout=600)
        deleted[table.name] = int(job.num_dml_affected_rows or 0)
    return deleted


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``replay``, ``backfill``, ``import-campaigns``."""
    replay = subcommands.add_parser(
        "replay", help="send Complete Journey weeks through the ingest API, as trackers"
    )
    journey_options(replay)
    replay.add_argument("--rate", type=float, help="events/s (default: as fast as possible)")
    replay.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    replay.add_argument("--batch", type=int, default=500, help="events per request")
    replay.set_defaults(run=replay_command)
    backfill = subcommands.add_parser(
        "backfill", help="load Complete Journey weeks straight into the read models"
    )
    journey_options(backfill)
    backfill.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    backfill.add_argument("--dataset", help="another dataset with the same tables")
    backfill.set_defaults(run=backfill_command)
    campaigns = subcommands.add_parser(
        "import-campaigns", help="the Complete Journey's campaigns, and what really happened"
    )
    campaigns.add_argument("--seed", type=int, default=8451)
    campaigns.add_argument("--shift-weeks", type=int, help="as for replay and backfill")
    campaigns.set_defaults(run=import_campaigns_command)
