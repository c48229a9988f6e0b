"""Every Firestore query the retention purge runs is served by a declared composite index.

The Firestore emulator enforces no index (docs/PRIVACY.md): a purge query without one
passes every local test and fails in production (FAILED_PRECONDITION). So the queries are
not listed by hand: every Firestore store of the eraser registry (built by the same
composition the function uses) runs its ``purge_before`` against a recording client, and
each query it sends with a range filter must find a ``gcp.firestore.Index`` in the Pulumi
program (under mocks) with its equality fields, then its range field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest.mock import MagicMock

import pytest

from shared.platform import clients
from shared.privacy.composition import privacy_registry
from tests.unit.pulumi_harness import system_build


@dataclass(frozen=True)
class SentQuery:
    database: str
    collection: str
    filters: tuple[tuple[str, str], ...]  # (field, operator), in the order given

    def index_fields(self) -> tuple[str, ...]:
        """What a composite index must hold: equality fields, then the range field."""
        equal = tuple(f for f, op in self.filters if op == "==")
        ranges = tuple(f for f, op in self.filters if op != "==")
        return equal + tuple(dict.fromkeys(ranges))

    @property
    def needs_composite(self) -> bool:
        return any(op != "==" for _, op in self.filters) and len(self.filters) > 1


class RecordingQuery:
    def __init__(
        self, log: list[SentQuery], database: str, collection: str, filters: tuple[Any, ...] = ()
    ) -> None:
        self._log, self._database, self._collection = log, database, collection
        self._filters = filters

    def where(self, *, filter: Any) -> RecordingQuery:
        added = (str(filter.field_path), str(filter.op_string))
        return RecordingQuery(self._log, self._database, self._collection, (*self._filters, added))

    def limit(self, _count: int) -> RecordingQuery:
        return self

    def stream(self) -> Iterator[Any]:
        self._log.append(SentQuery(self._database, self._collection, tuple(self._filters)))
        return iter(())


class RecordingClient:
    def __init__(self, log: list[SentQuery], database: str) -> None:
        self._log, self._database = log, database

    def collection(self, name: str) -> RecordingQuery:
        return RecordingQuery(self._log, self._database, name)

    def batch(self) -> Any:
        batch = MagicMock()
        batch.commit.side_effect = AssertionError("nothing to delete: queries answer nothing")
        return batch


def purge_queries(monkeypatch: pytest.MonkeyPatch) -> list[SentQuery]:
    log: list[SentQuery] = []
    monkeypatch.setattr(
        clients,
        "firestore_client",
        lambda project, database="(default)": RecordingClient(log, database),
    )
    monkeypatch.setattr(clients, "bigtable_client", lambda project, **kwargs: MagicMock())
    monkeypatch.setattr(clients, "bigquery_client", lambda project, host: MagicMock())
    registry = privacy_registry("demo-indexes", "cartwise", None)
    stores = [entry for entry in registry if entry.name.startswith("firestore:")]
    assert len(stores) >= 2, registry.names()
    for entry in stores:
        entry.store.purge_before("retailer-1", datetime(2026, 1, 1, tzinfo=UTC))
    return log


def test_every_purge_query_has_a_composite_index(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = purge_queries(monkeypatch)
    needed = {(q.database, q.collection, q.index_fields()) for q in sent if q.needs_composite}
    # plays, their tombstones (played_orders) and claims, each by retailer and time.
    assert {c for _, c, _ in needed} >= {"plays", "played_orders", "claims"}
    indexes = system_build().of("firestore/index:Index")
    declared = {
        (
            str(r.inputs["database"]),
            str(r.inputs["collection"]),
            tuple(str(f["fieldPath"]) for f in r.inputs["fields"]),
        )
        for r in indexes
    }
    assert needed - declared == set()
    for index in indexes:
        assert index.inputs["queryScope"] == "COLLECTION"
        assert {f["order"] for f in index.inputs["fields"]} == {"ASCENDING"}
