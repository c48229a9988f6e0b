from __future__ import annotations

from shared.platform.batching import chunked


def test_chunks_respect_count_and_size_and_keep_order() -> None:
    items = ["aa", "bbbb", "c", "dddddd", "e", "f"]
    chunks = list(chunked(items, max_items=3, max_bytes=6, size_of=len))
    assert chunks == [["aa", "bbbb"], ["c"], ["dddddd"], ["e", "f"]]
    assert [x for chunk in chunks for x in chunk] == items


def test_an_oversized_item_travels_alone_and_empty_input_gives_nothing() -> None:
    assert list(chunked(["x" * 10, "y"], 5, 4, len)) == [["x" * 10], ["y"]]
    assert list(chunked([], 5, 4, len)) == []
