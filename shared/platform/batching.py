"""Split work into requests that respect a service's count and size limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def chunked(
    items: Iterable[T], max_items: int, max_bytes: int, size_of: Callable[[T], int]
) -> Iterator[list[T]]:
    """Consecutive chunks of at most ``max_items`` items and ``max_bytes`` bytes
    (an item larger than ``max_bytes`` travels alone)."""
    chunk: list[T] = []
    size = 0
    for item in items:
        length = size_of(item)
        if chunk and (len(chunk) >= max_items or size + length > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += length
    if chunk:
        yield chunk
