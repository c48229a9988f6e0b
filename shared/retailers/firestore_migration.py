"""Credentials written before they had a database of their own, moved there.

``move_documents(source, target, collections)``: every document of these collections of
the ``source`` database is written to the ``target`` database (unless one with its id is
there already: the target wins), then deleted from ``source``. Idempotent: a second run
moves nothing. ``cartwise credentials migrate`` (docs/DEPLOY.md) and the local stack's
bootstrap run it from ``(default)`` to ``credentials``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def move_documents(source: Any, target: Any, collections: Iterable[str]) -> dict[str, int]:
    """Documents moved, by collection."""
    moved: dict[str, int] = {}
    for name in collections:
        count = 0
        for snapshot in source.collection(name).stream():
            destination = target.collection(name).document(snapshot.id)
            if not destination.get().exists:
                destination.set(snapshot.to_dict() or {})
            snapshot.reference.delete()
            count += 1
        moved[name] = count
    return moved
