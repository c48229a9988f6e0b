"""Every Bigtable request of a component names the app profile of its settings
(``BIGTABLE_APP_PROFILE``): tables opened through the client carry it, and raw protobuf
requests take it from their table (docs/DEPLOY.md, "Bigtable replication")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from google.cloud.bigtable_v2.types import MutateRowsRequest, ReadRowsRequest

from shared.platform.bigtable_raw import table_request
from shared.platform.clients import bigtable_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Clients are built, never called: the emulator host only spares credentials.
    monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", "localhost:1")


def test_tables_of_a_profiled_client_name_its_profile_in_raw_requests() -> None:
    table = bigtable_client("p", app_profile_id="components").instance("i").table("t")
    assert table_request(ReadRowsRequest, table).app_profile_id == "components"
    request = table_request(MutateRowsRequest, table)
    assert (request.table_name, request.app_profile_id) == (table.name, "components")


def test_without_a_profile_requests_use_the_default_one() -> None:
    table = bigtable_client("p").instance("i").table("t")
    assert table_request(ReadRowsRequest, table, rows_limit=3).app_profile_id == ""


def test_every_raw_request_is_built_by_table_request() -> None:
    """A request built with ``table_name=`` elsewhere would go out without the profile."""
    offenders = []
    for path in (ROOT / "shared").rglob("*.py"):
        if path.name == "bigtable_raw.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "table_name":
                offenders.append(f"{path.relative_to(ROOT)}:{node.value.lineno}")
    assert offenders == []
