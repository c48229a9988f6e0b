"""``stream`` sliced by a column on bqemulator's Storage Read API: every row once, each
read session restricted to a slice of about ``batch_rows`` rows (bqemulator sends a whole
table in one message: only the restriction bounds a read)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.platform import clients
from shared.platform.bigquery_warehouse import BigQueryWarehouse

pytestmark = pytest.mark.integration


class SessionLog:
    """The real read client, with the row restrictions of the sessions it opened noted."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.restrictions: list[str] = []

    def create_read_session(self, **kwargs: Any) -> Any:
        self.restrictions.append(kwargs["read_session"].read_options.row_restriction)
        return self._client.create_read_session(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_sliced_stream_reads_every_row_once_a_slice_per_session(stack: dict[str, str]) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    dataset = f"stream_slices_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    try:
        sessions = SessionLog(clients.bigquery_read_client(stack["BIGQUERY_STORAGE_EMULATOR_HOST"]))
        warehouse = BigQueryWarehouse(client, project, dataset, (), sessions)
        sql = (
            "SELECT x AS id, MOD(x, 100) AS shard_bucket "
            "FROM UNNEST(GENERATE_ARRAY(0, 4999)) AS x"
        )  # 100 buckets of 50 rows
        batches = list(warehouse.stream(sql, batch_rows=600, slice_by="shard_bucket"))
        ids = sorted(r["id"] for batch in batches for r in batch)
        assert ids == list(range(5000))
        assert all(len(b) <= 600 for b in batches)
        # 12 buckets (600 rows) a session: 9 sessions, each over a range of <= 12 buckets.
        assert len(sessions.restrictions) == 9, sessions.restrictions
        spans = []
        for restriction in sessions.restrictions:
            low, high = restriction.removeprefix("shard_bucket BETWEEN ").split(" AND ")
            spans.append((int(low), int(high)))
        assert spans[0][0] == 0 and spans[-1][1] == 99
        assert all(high - low + 1 <= 12 for low, high in spans)

    finally:
        client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)
