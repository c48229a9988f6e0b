"""The retention purge: time and rows read against the size of what is kept.

``python -m bench.purge [--old 5000] [--kept 5000] [--json out.json]`` (``make
bench-purge``), on the local stack (``make up``). A 2x2 grid: 1x and 4x the same old data,
with 1x and 4x recent (kept) data. In each cell, two fresh retailers get the same rows,
written by ingest's own adapter (``BigtableEventStore.write`` + ``mark_published``: the
events, their ``event_ids`` rows and their ``event_hours`` index rows) and hot-state rows
(``shopper_state``, one per shopper, old or recent by cell time); then

- **baseline**: the purge as it was before the index (kept here only): a row-key regex
  over the whole table, read twice (every row of the retailer, and those with a recent
  cell, whose keys are held in memory), on the first retailer;
- **purge**: ``shared.privacy.bigtable_erasers`` as deployed, on the second retailer.

Per store and cell: rows deleted, rows read (what Bigtable sent back, counted by the
adapter) and seconds. The kept rows are deleted after each cell (so that the baseline's
table scan sees the same table in every cell). Progress goes to stderr; a table to
stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.freeze import stack_env
from emulators.config import StackSettings
from shared.privacy.bigtable_erasers import BigtableShopperEvents, BigtableShopperStates

WRITE_CHUNK = 500


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _old_keys(table: Any, request: Any, latest_before: datetime) -> Iterator[bytes]:
    """The old scan: keys of rows with no cell at or after the cut-off, found by reading
    the rows with a recent cell (their keys kept in memory), then every row."""
    from shared.platform.bigtable_raw import micros

    chain = request.filter.chain.filters
    chain.add().cells_per_column_limit_filter = 1
    chain.add().strip_value_transformer = True
    recent = table._request()
    recent.CopyFrom(request)
    recent.filter.chain.filters.add().timestamp_range_filter.start_timestamp_micros = micros(
        latest_before
    )
    keep = {key for key, _ in table._read(recent)}
    for key, _ in table._read(request):
        if key not in keep:
            yield key


def _salted_regex(retailer_id: str) -> bytes:
    return f"[0-9a-f]{{3}}#{re.escape(retailer_id)}#.*".encode()


class BaselineShopperEvents(BigtableShopperEvents):
    """The purge of ``shopper_events`` before ``event_hours`` (the baseline only)."""

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        request = self._request()
        request.filter.chain.filters.add().row_key_regex_filter = _salted_regex(retailer_id)
        return self._delete_events(retailer_id, _old_keys(self, request, cutoff))


class BaselineShopperStates(BigtableShopperStates):
    """The purge of ``shopper_state`` before the condition filter (the baseline only)."""

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        request = self._request()
        request.filter.chain.filters.add().row_key_regex_filter = _salted_regex(retailer_id)
        return self._delete_scanned(_old_keys(self, request, cutoff))


def load(project: str, retailer: str, old: int, kept: int, cutoff: datetime) -> None:
    """``old`` events and state rows before the cut-off (over 20 days), ``kept`` after
    (over 20 days). The cut-off is 60 days ago: no row reaches the 90-day GC rule of
    ``shopper_state``, which the emulator applies too (an older row would vanish)."""
    from shared.contract.events import validate_event
    from shared.ingestion.bigtable_events import BigtableEventStore
    from shared.ingestion.service import make_record, message_head, shopper_prefix
    from shared.platform import clients
    from shared.platform.bigtable_raw import micros, mutate_rows
    from shared.system.resources import BIGTABLE_INSTANCE, SHOPPER_STATE_TABLE, STATE_FAMILY
    from tests.factories import event

    client = clients.bigtable_client(project)
    store = BigtableEventStore(client, BIGTABLE_INSTANCE)
    head = message_head(retailer, datetime.now(UTC))
    span = 20 * 24 * 60  # minutes
    moments = [cutoff - timedelta(minutes=1 + (n * span) // max(old, 1)) for n in range(old)]
    moments += [cutoff + timedelta(minutes=1 + (n * span) // max(kept, 1)) for n in range(kept)]
    for start in range(0, len(moments), WRITE_CHUNK):
        records = []
        for n, moment in enumerate(moments[start : start + WRITE_CHUNK], start):
            parsed = validate_event(event(shopper_id=f"s-{n % 200}", occurred_at=moment))
            assert not isinstance(parsed, list), parsed
            records.append(make_record(retailer, parsed, head))
        store.write(records)
        store.mark_published(records)
    state = client.instance(BIGTABLE_INSTANCE).table(SHOPPER_STATE_TABLE)
    rows = [
        (
            shopper_prefix(retailer, f"state-{n}").encode(),
            [(STATE_FAMILY, b"x", b"1", micros(moment))],
        )
        for n, moment in enumerate(moments)
    ]
    for start in range(0, len(rows), WRITE_CHUNK):
        mutate_rows(client.table_data_client, state, rows[start : start + WRITE_CHUNK])


def measure(store: Any, retailer: str, cutoff: datetime) -> dict[str, Any]:
    """The purge's figures; a purge that fails (the old scan's stream outlives the RPC
    deadline, ``TIMEOUT_S``) is reported with its error, as far as it got."""
    from shared.platform.errors import StoreUnavailableError

    started = time.monotonic()
    error = None
    try:
        deleted: int | None = store.purge_before(retailer, cutoff)
    except StoreUnavailableError as exc:
        deleted, error = None, str(exc)[:120]
    return {
        "deleted": deleted,
        "rows_read": store.rows_read(),
        "seconds": round(time.monotonic() - started, 2),
        "error": error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.purge", description=__doc__)
    parser.add_argument("--old", type=int, default=5000, help="old events at 1x")
    parser.add_argument("--kept", type=int, default=5000, help="kept events at 1x")
    parser.add_argument("--no-baseline", action="store_true", help="the purge only")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    env = stack_env(StackSettings())
    from shared.platform import clients
    from shared.system.resources import BIGTABLE_INSTANCE

    project = env["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigtable_client(project)
    cutoff = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=60)
    run = uuid.uuid4().hex[:6]
    cells: list[dict[str, Any]] = []
    grid = [(o, k) for o in (1, 4) for k in (1, 4)]
    implementations = [("purge", BigtableShopperEvents, BigtableShopperStates)]
    if not args.no_baseline:
        implementations.insert(0, ("baseline", BaselineShopperEvents, BaselineShopperStates))
    for cell, (old_x, kept_x) in enumerate(grid, 1):
        old, kept = args.old * old_x, args.kept * kept_x
        label = f"{old_x}x old / {kept_x}x kept"
        for name, events_type, states_type in implementations:
            retailer = f"bench-purge-{run}-{cell}-{name}"
            progress(
                f"cell {cell}/4 ({label}), {name} ({retailer}): "
                f"loading {old} old + {kept} kept events"
            )
            started = time.monotonic()
            load(project, retailer, old, kept, cutoff)
            progress(f"  loaded in {time.monotonic() - started:.1f}s; purging")
            for store_name, store in (
                ("shopper_events", events_type(client, BIGTABLE_INSTANCE)),
                ("shopper_state", states_type(client, BIGTABLE_INSTANCE)),
            ):
                figures = measure(store, retailer, cutoff)
                progress(f"  {store_name}: {figures}")
                cells.append(
                    {
                        "cell": label,
                        "old": old,
                        "kept": kept,
                        "implementation": name,
                        "store": store_name,
                        **figures,
                    }
                )
                if figures["error"] is None and figures["deleted"] != old:
                    sys.exit(f"{name} {store_name}: deleted {figures['deleted']}, not {old}")
            # The kept rows go too: every cell scans the same table.
            far = datetime.now(UTC) + timedelta(days=1)
            BigtableShopperEvents(client, BIGTABLE_INSTANCE).purge_before(retailer, far)
            BigtableShopperStates(client, BIGTABLE_INSTANCE).purge_before(retailer, far)

    print(f"\n{'cell':<22} {'store':<15} {'impl.':<9} {'deleted':>8} {'read':>8} {'s':>7}")
    for row in cells:
        print(
            f"{row['cell']:<22} {row['store']:<15} {row['implementation']:<9} "
            f"{row['deleted'] if row['error'] is None else 'failed':>8} {row['rows_read']:>8} "
            f"{row['seconds']:>7.2f}"
        )
    for row in cells:
        if row["error"]:
            print(f"failed: {row['cell']}, {row['store']}, {row['implementation']}: {row['error']}")
    result = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "old_1x": args.old,
        "kept_1x": args.kept,
        "cells": cells,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
