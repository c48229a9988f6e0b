"""Errors every store adapter raises, whatever the capability."""

from __future__ import annotations


class StoreUnavailableError(RuntimeError):
    """A store or the topic could not be reached: nothing of the request is accepted."""
