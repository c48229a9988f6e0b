"""Which stores hold shopper data: the plan the eraser registry is built from.

Derived from ``shared.system.resources.SYSTEM`` so that a new BigQuery table with a
``shopper_id`` column is erased (and purged) without further work; Bigtable tables and
Firestore collections are listed here by name (their key layouts differ). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.freezer.read_models import DEAD_LETTERS
from shared.privacy.retention import DataClass
from shared.system.resources import (
    BIGQUERY_DATA_CLASSES,
    EVENT_HOURS_TABLE,
    EVENT_IDS_TABLE,
    EXPERIENCE_TREES_TABLE,
    PRIVACY_MARKS_TABLE,
    RATE_LIMITS_TABLE,
    REJECTED_EVENTS_TABLE,
    REWARDS_DATABASE,
    SHOPPER_EVENTS_TABLE,
    SHOPPER_STATE_TABLE,
    SYSTEM,
    SystemResources,
)

Kind = Literal["bigtable", "bigquery", "bigquery_runs", "bigquery_dead_letters", "firestore"]

# Bigtable tables: the eraser of each, and the tables that hold no shopper data.
BIGTABLE_ERASERS: dict[str, DataClass] = {
    SHOPPER_EVENTS_TABLE: DataClass.RAW_EVENTS,  # with its index, event_ids
    SHOPPER_STATE_TABLE: DataClass.HOT_STATE,
    EXPERIENCE_TREES_TABLE: DataClass.HOT_STATE,
    REJECTED_EVENTS_TABLE: DataClass.RAW_EVENTS,
}
# event_hours holds no shopper id (retailer, hour, event id): the purge of shopper_events
# deletes its rows; after an erasure, what is left of one points to nothing.
BIGTABLE_COVERED_BY = {
    EVENT_IDS_TABLE: SHOPPER_EVENTS_TABLE,
    EVENT_HOURS_TABLE: SHOPPER_EVENTS_TABLE,
}
# Keys: retailer and second; retailer and keyed shopper hash (no customer identifier; an
# erasure mark expires by age, an objection's stands while it does: docs/PRIVACY.md).
BIGTABLE_WITHOUT_SHOPPERS = {RATE_LIMITS_TABLE, PRIVACY_MARKS_TABLE}

# Firestore collections holding shopper data, and their class: the rewards game's winners'
# claims (their e-mail addresses) and plays, erased by the rewards adapters.
FIRESTORE_ERASERS: dict[tuple[str, str], DataClass] = {
    (REWARDS_DATABASE, "claims"): DataClass.REWARDS,
    (REWARDS_DATABASE, "plays"): DataClass.REWARDS,
}


@dataclass(frozen=True)
class PlannedStore:
    name: str
    data_class: DataClass
    kind: Kind
    target: str  # the table, or "database/collection"


def store_plan(system: SystemResources = SYSTEM) -> list[PlannedStore]:
    """Every store to erase and purge, in erasure order (derived data before sources is
    not needed: each eraser finds its rows by shopper id alone)."""
    plan: list[PlannedStore] = []
    for table in system.bigtable_tables:
        if table.name in BIGTABLE_ERASERS:
            plan.append(
                PlannedStore(
                    f"bigtable:{table.name}", BIGTABLE_ERASERS[table.name], "bigtable", table.name
                )
            )
        elif table.name not in BIGTABLE_COVERED_BY and table.name not in BIGTABLE_WITHOUT_SHOPPERS:
            raise ValueError(f"bigtable table {table.name!r}: no eraser and not declared free")
    for bq in system.bigquery_tables:
        names = bq.column_names
        if bq.name == DEAD_LETTERS.name:
            plan.append(
                PlannedStore(
                    f"bigquery:{bq.name}",
                    BIGQUERY_DATA_CLASSES[bq.name],
                    "bigquery_dead_letters",
                    bq.name,
                )
            )
        elif "shopper_id" in names:
            if bq.name not in BIGQUERY_DATA_CLASSES:
                raise ValueError(f"bigquery table {bq.name!r} holds shoppers: give it a class")
            if "retailer_id" not in names:
                # A customer id is one retailer's: erasing or purging it without the
                # retailer would reach another retailer's shopper with the same id.
                raise ValueError(f"bigquery table {bq.name!r} holds shoppers: add retailer_id")
            kind: Kind = "bigquery_runs" if "run_id" in names else "bigquery"
            plan.append(
                PlannedStore(f"bigquery:{bq.name}", BIGQUERY_DATA_CLASSES[bq.name], kind, bq.name)
            )
    declared = {(d.name, c) for d in system.firestore_databases for c in d.collections}
    for (database, collection), data_class in FIRESTORE_ERASERS.items():
        if (database, collection) not in declared:
            raise ValueError(f"firestore {database}/{collection} is not declared")
        plan.append(
            PlannedStore(
                f"firestore:{database}/{collection}",
                data_class,
                "firestore",
                f"{database}/{collection}",
            )
        )
    return plan


def store_names(system: SystemResources = SYSTEM) -> list[str]:
    return [p.name for p in store_plan(system)]
