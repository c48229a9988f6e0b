"""``BigQueryWarehouse.stream`` hands out fixed-size batches of Python rows, whatever the
size of the Storage Read batches it receives (bqemulator sends a small table in one), and
turns only a slice at a time into Python objects (issue 21: memory per task bounded)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from shared.platform import bigquery_warehouse
from shared.platform.bigquery_warehouse import BigQueryWarehouse


class Rows:
    def __init__(self, batches: list[pa.RecordBatch]) -> None:
        self._batches = batches

    def to_arrow_iterable(self, bqstorage_client: Any) -> Any:
        return iter(self._batches)


class Client:
    """Just what ``stream`` calls: the CTAS, the table's expiry, its rows, the drop."""

    def __init__(self, batches: list[pa.RecordBatch]) -> None:
        self.batches, self.sql, self.dropped = batches, "", ""

    def query(self, sql: str, job_config: Any, timeout: float) -> Any:
        self.sql = sql
        return type("Job", (), {"result": lambda self, timeout: None})()

    def get_table(self, name: str) -> Any:
        return type("Table", (), {"expires": None})()

    def update_table(self, table: Any, fields: list[str]) -> None:
        pass

    def list_rows(self, table: Any, page_size: int) -> Rows:
        return Rows(self.batches)

    def delete_table(self, name: str, not_found_ok: bool) -> None:
        self.dropped = name


def test_batches_are_cut_to_size_and_converted_a_slice_at_a_time(monkeypatch: Any) -> None:
    whole = pa.RecordBatch.from_pydict({"n": list(range(10_500))})
    tail = pa.RecordBatch.from_pydict({"n": list(range(10_500, 10_800))})
    client = Client([whole, tail])
    converted: list[int] = []
    parts = bigquery_warehouse._parts

    def counting(batch: Any, rows: int) -> Any:
        for part in parts(batch, rows):
            converted.append(len(part))
            yield part

    monkeypatch.setattr(bigquery_warehouse, "_parts", counting)
    warehouse = BigQueryWarehouse(client, "p", "d", (), read_client=object())
    batches = list(warehouse.stream("SELECT 1", batch_rows=2_000))
    assert [len(b) for b in batches] == [2_000] * 5 + [800]
    assert [r["n"] for b in batches for r in b] == list(range(10_800))
    assert max(converted) == 2_000  # never the whole read batch at once
    assert client.sql.startswith("CREATE TABLE") and client.dropped.startswith("p.d._stream_")
