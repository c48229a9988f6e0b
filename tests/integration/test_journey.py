"""The Complete Journey through the real endpoint and as a backfill: the same rows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import cli
from shared.freezer.read_models import DATASET, READ_MODELS
from shared.journey import dataset as journey
from shared.journey.backfill import BackfillSummary, transform
from shared.journey.tracker_simulator import DEFAULT_SEED, RETAILERS, Simulation, sessions
from shared.platform import clients
from tests.integration.owned_data import empty_dataset
from tests.integration.test_freezer import query

pytestmark = pytest.mark.integration

WEEKS = ["--weeks", "12", "--households", "12", "--shift-weeks", "455"]


@pytest.fixture
def backfill_dataset(stack: dict[str, str]) -> Iterator[str]:
    """An empty dataset with the read models' tables, dropped afterwards."""
    with empty_dataset(stack, "backfill", READ_MODELS) as name:
        yield name


def expected_rows() -> dict[str, list[dict[str, Any]]]:
    """The rows of the same sessions, built here by the pure transformation."""
    households = journey.sample_households((12, 12), 12, DEFAULT_SEED)
    baskets = journey.baskets((12, 12), households)
    simulation = Simulation(seed=DEFAULT_SEED, shift_weeks=455)
    return transform(
        sessions(baskets, journey.products(), simulation), datetime.now(UTC), BackfillSummary()
    )


def rows_in(
    stack: dict[str, str], dataset: str, table: str, ids: list[str]
) -> list[dict[str, Any]]:
    rows = query(
        stack,
        f"SELECT * FROM `{stack['GOOGLE_CLOUD_PROJECT']}.{dataset}.{table}` "
        "WHERE row_id IN UNNEST(@ids) ORDER BY row_id",
        ids=ids,
    )
    for row in rows:
        del row["ingested_at"]  # when each path took the event in: the only difference
    return rows


def test_replaying_a_week_and_backfilling_it_give_the_same_rows(
    stack: dict[str, str], backfill_dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = expected_rows()
    ids = {table: [r["row_id"] for r in rows] for table, rows in expected.items()}
    assert {"page_views", "basket_changes", "orders", "sold_products"} <= set(ids)
    events = sum(len(rows) for table, rows in expected.items() if table != "sold_products")

    assert cli.main(["replay", *WEEKS, "--concurrency", "2"]) == 0
    replayed = summary_of(capsys.readouterr().out)
    assert replayed["sent"] == events
    assert replayed["accepted"] + replayed["duplicates"] == events
    assert replayed["rejected"] == replayed["failed_batches"] == 0

    assert cli.main(["backfill", *WEEKS, "--dataset", backfill_dataset, "--workers", "1"]) == 0
    backfilled = summary_of(capsys.readouterr().out)
    assert backfilled["events"] == events
    assert backfilled["inserted"] == {t: len(r) for t, r in sorted(expected.items())}

    # The freezer takes the replayed events in as they come: wait for all of them.
    deadline = time.monotonic() + 180
    while True:
        counts = {t: len(rows_in(stack, DATASET, t, ids[t])) for t in ids}
        if counts == {t: len(i) for t, i in ids.items()} or time.monotonic() > deadline:
            break
        time.sleep(2)
    for table in sorted(ids):
        frozen = rows_in(stack, DATASET, table, ids[table])
        loaded = rows_in(stack, backfill_dataset, table, ids[table])
        assert len(loaded) == len(ids[table]), table
        assert frozen == loaded, table

    # A second backfill of the same range inserts nothing.
    assert cli.main(["backfill", *WEEKS, "--dataset", backfill_dataset, "--workers", "1"]) == 0
    again = summary_of(capsys.readouterr().out)
    assert sum(again["inserted"].values()) == 0


def summary_of(printed: str) -> dict[str, Any]:
    """The JSON summary a replay or backfill prints after its header lines."""
    return dict(json.loads(printed[printed.index("\n{") + 1 :]))


def test_replays_and_backfills_skip_suppressed_shoppers(
    stack: dict[str, str], backfill_dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shopper who objected (or was erased) is never brought back by a replay or a
    backfill: the replay does not send their events (ingest would refuse them anyway), the
    backfill, which writes the read models directly, leaves them out; the others' rows are
    all there. The suppression is removed afterwards (the demo replays the same data)."""
    from shared.privacy.firestore_records import SUPPRESSIONS, FirestoreSuppressionList
    from shared.privacy.service import Suppression
    from shared.privacy_marks.marks import ShopperHasher

    expected = expected_rows()
    order = expected["orders"][0]
    retailer, target = str(order["retailer_id"]), str(order["shopper_id"])
    theirs = {
        t: [r for r in rows if r["shopper_id"] == target and r["retailer_id"] == retailer]
        for t, rows in expected.items()
    }
    events = sum(len(rows) for table, rows in expected.items() if table != "sold_products")
    their_events = sum(len(rows) for table, rows in theirs.items() if table != "sold_products")
    assert 0 < their_events < events

    suppression = Suppression(
        retailer_id=retailer,
        shopper_hash=ShopperHasher(stack["SHOPPER_HASH_KEY"].encode())(retailer, target),
        reason="objected",
        at=datetime.now(UTC),
    )
    firestore = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"])
    suppressions = FirestoreSuppressionList(firestore)
    # Earlier runs on a long-lived stack leave erased shoppers (hashed) of these retailers.
    already = sum(len(suppressions.hashes(r, ("erased", "objected"))) for r in RETAILERS)
    suppressions.add(suppression)
    try:
        assert cli.main(["backfill", *WEEKS, "--dataset", backfill_dataset, "--workers", "1"]) == 0
        printed = capsys.readouterr().out
        assert f"skipping {already + 1} erased or suppressed shoppers" in printed, printed
        backfilled = summary_of(printed)
        assert backfilled["events"] == events - their_events
        assert backfilled["inserted"] == {
            t: len(rows) - len(theirs[t]) for t, rows in sorted(expected.items())
        }
        for table in expected:
            found = query(
                stack,
                f"SELECT COUNT(*) AS n FROM `{stack['GOOGLE_CLOUD_PROJECT']}.{backfill_dataset}"
                f".{table}` WHERE shopper_id = @s",
                s=target,
            )
            assert found[0]["n"] == 0, table

        assert cli.main(["replay", *WEEKS, "--concurrency", "2"]) == 0
        replayed = summary_of(capsys.readouterr().out)
        assert replayed["sent"] == events - their_events
        assert replayed["rejected"] == replayed["failed_batches"] == 0
    finally:
        key = f"{suppression.retailer_id}:{suppression.shopper_hash}:{suppression.reason}"
        firestore.collection(SUPPRESSIONS).document(key).delete()
