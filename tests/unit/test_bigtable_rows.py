"""Merging ReadRows cell chunks without the client library (pure protocol logic)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.cloud.bigtable_v2.types import ReadRowsRequest, ReadRowsResponse

from shared.platform.bigtable_raw import read_rows

Chunk = ReadRowsResponse.CellChunk


class Replay:
    """Stands for the GAPIC client: answers ReadRows with the given responses."""

    def __init__(self, *responses: list[dict[str, Any]]) -> None:
        self._responses = responses

    def read_rows(self, request: ReadRowsRequest, timeout: float) -> Iterator[ReadRowsResponse]:
        for chunks in self._responses:
            yield ReadRowsResponse(chunks=[Chunk(**chunk) for chunk in chunks])


def cell(**fields: Any) -> dict[str, Any]:
    return fields


def test_rows_split_values_resets_and_newest_cells() -> None:
    api = Replay(
        [
            cell(
                row_key=b"a",
                family_name={"value": "id"},
                qualifier={"value": b"digest"},
                timestamp_micros=2,
                value=b"new",
            ),
            cell(timestamp_micros=1, value=b"old"),  # an older version of the same column
            cell(qualifier={"value": b"row_key"}, value=b"he", value_size=5),
        ],
        [
            cell(value=b"llo", commit_row=True),
            cell(
                row_key=b"b",
                family_name={"value": "id"},
                qualifier={"value": b"digest"},
                value=b"dropped",
            ),
            cell(reset_row=True),
            cell(
                row_key=b"b",
                family_name={"value": "id"},
                qualifier={"value": b"digest"},
                value=b"kept",
                commit_row=True,
            ),
        ],
    )
    rows = list(read_rows(api, ReadRowsRequest.pb()(table_name="t")))
    assert rows == [
        (b"a", {("id", b"digest"): b"new", ("id", b"row_key"): b"hello"}),
        (b"b", {("id", b"digest"): b"kept"}),
    ]
