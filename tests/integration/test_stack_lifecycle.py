"""A second, isolated stack on other ports: up, crash, status, down, up again; what the
stores keep across `down` / `up` (Firestore, BigQuery) and what they lose (Bigtable)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emulators import processes
from emulators import stack as local_stack
from emulators.config import StackSettings
from tests.conftest import guard

pytestmark = pytest.mark.integration


@pytest.fixture
def isolated(tmp_path: Path) -> Iterator[StackSettings]:
    base = StackSettings()
    settings = StackSettings(
        # Its own local_dir, hence its own data_dir: never the demo's saved data.
        local_dir=tmp_path / "local",
        persist_data=True,
        pubsub_port=base.pubsub_port + 1000,
        bigtable_port=base.bigtable_port + 1000,
        firestore_port=base.firestore_port + 1000,
        bigquery_port=base.bigquery_port + 1000,
        bigquery_grpc_port=base.bigquery_grpc_port + 1000,
        workflows_port=base.workflows_port + 1000,
        storage_port=base.storage_port + 1000,
        functions_base_port=base.functions_base_port + 1000,
    )
    guard(settings.emulator_env())  # a demo- project on loopback, before anything starts
    saved = dict(os.environ)
    try:
        yield settings
    finally:
        local_stack.down(settings)
        os.environ.clear()
        os.environ.update(saved)


def _ports(settings: StackSettings) -> list[int]:
    return [p for c in local_stack.components(settings) for p in c.ports]


PROBE_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PROBE_DATASET = "persistence_probe"


def _bigquery(settings: StackSettings) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=settings.project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(
            api_endpoint=f"http://{settings.host}:{settings.bigquery_port}"
        ),
    )


def _firestore(settings: StackSettings, database: str) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=settings.project, database=database)


def _bigtable_table(settings: StackSettings) -> Any:
    from google.cloud import bigtable

    client = bigtable.Client(project=settings.project, admin=True)
    return client.instance("persistence-probe").table("persistence_probe")


def _write_probes(settings: StackSettings) -> set[str]:
    """A document in each Firestore database, a BigQuery row, a Bigtable row; returns the
    BigQuery tables present, declared ones included."""
    for database in ("(default)", "rewards"):
        document = _firestore(settings, database).collection("persistence_probe").document("p")
        document.set({"database": database, "at": PROBE_AT, "n": 7})
        document.collection("nested").document("q").set({"deep": True})

    from google.cloud import bigquery

    client = _bigquery(settings)
    client.create_dataset(PROBE_DATASET)
    table = client.create_table(
        bigquery.Table(
            f"{settings.project}.{PROBE_DATASET}.rows",
            schema=[
                bigquery.SchemaField("k", "STRING"),
                bigquery.SchemaField("seen_at", "TIMESTAMP"),
            ],
        )
    )
    assert client.insert_rows_json(table, [{"k": "kept", "seen_at": PROBE_AT.isoformat()}]) == []
    tables = {
        f"{dataset.dataset_id}.{t.table_id}"
        for dataset in client.list_datasets()
        for t in client.list_tables(dataset)
    }
    client.close()

    bigtable_table = _bigtable_table(settings)
    bigtable_table.create(column_families={"f": None})
    row = bigtable_table.direct_row(b"persistence-probe")
    row.set_cell("f", b"c", b"v")
    row.commit()
    assert _bigtable_table(settings).read_row(b"persistence-probe") is not None
    return tables


def _assert_probes(settings: StackSettings, tables_before: set[str]) -> None:
    for database in ("(default)", "rewards"):
        document = _firestore(settings, database).collection("persistence_probe").document("p")
        assert document.get().to_dict() == {"database": database, "at": PROBE_AT, "n": 7}
        assert document.collection("nested").document("q").get().to_dict() == {"deep": True}

    client = _bigquery(settings)
    rows = list(client.query(f"SELECT k, seen_at FROM `{PROBE_DATASET}.rows`").result())
    assert [(r["k"], r["seen_at"]) for r in rows] == [("kept", PROBE_AT)]
    tables = {
        f"{dataset.dataset_id}.{t.table_id}"
        for dataset in client.list_datasets()
        for t in client.list_tables(dataset)
    }
    assert tables == tables_before  # the bootstrap's second pass created no duplicate
    client.close()

    # Documented: the Bigtable emulator keeps nothing, neither the table nor its row (the
    # bootstrap re-creates the declared tables, empty).
    assert not _bigtable_table(settings).exists()


def test_up_crash_status_down_up(isolated: StackSettings, tmp_path: Path) -> None:
    local_stack.up(isolated)
    rows = local_stack.status(isolated)
    assert rows and all(r.healthy for r in rows), rows
    assert isolated.env_file.exists()

    # A crashed emulator (its JVM killed under the gcloud wrapper) is reported, not hidden.
    pubsub = next(r for r in rows if r.name == "pubsub")
    assert pubsub.pid is not None
    children = [p for p in processes.group_members(pubsub.pid) if p != pubsub.pid]
    assert children
    for child in children:
        os.kill(child, signal.SIGKILL)
    assert processes.wait_until(
        lambda: not next(r for r in local_stack.status(isolated) if r.name == "pubsub").healthy,
        20,
    )

    # `up` again repairs only what is broken.
    before = local_stack.read_state(isolated)
    local_stack.up(isolated)
    after = local_stack.read_state(isolated)
    assert after["pubsub"] != before["pubsub"]
    assert {k: v for k, v in after.items() if k != "pubsub"} == {
        k: v for k, v in before.items() if k != "pubsub"
    }
    rows = local_stack.status(isolated)
    assert all(r.healthy for r in rows), [r for r in rows if not r.healthy]

    tables = _write_probes(isolated)

    # `down` leaves no process of the stack and no port held; a second `up` works.
    pids = list(local_stack.read_state(isolated).values())
    assert local_stack.down(isolated) == []
    assert all(processes.group_members(pid) == [] for pid in pids)
    assert all(processes.port_is_free(isolated.host, port) for port in _ports(isolated))
    # What survives is saved under this stack's own local_dir.
    assert isolated.data_dir.is_relative_to(tmp_path)
    for database in ("(default)", "rewards"):
        export = isolated.firestore_data_dir / database / f"{database}.overall_export_metadata"
        assert export.exists()
    assert (isolated.bigquery_data_dir / "bqemulator.duckdb").exists()
    local_stack.up(isolated)
    rows = local_stack.status(isolated)
    assert all(r.healthy for r in rows), [r for r in rows if not r.healthy]

    # Firestore (both databases) and BigQuery kept their data; Bigtable did not.
    _assert_probes(isolated, tables)


def test_busy_port_gives_a_clear_error(isolated: StackSettings) -> None:
    import socket

    with socket.socket() as squatter:
        # REUSEADDR: the previous test's connections may linger in TIME_WAIT on this port;
        # a listening socket still makes the port busy for the stack.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((isolated.host, isolated.firestore_port))
        squatter.listen()
        with pytest.raises(local_stack.StackError, match=f"port {isolated.firestore_port}"):
            local_stack.up(isolated)
    assert all(processes.port_is_free(isolated.host, p) for p in _ports(isolated))
