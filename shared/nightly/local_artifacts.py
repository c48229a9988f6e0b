"""``ArtifactStore`` on a local directory (the Cloud Storage prefix's stand-in locally)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class LocalArtifactStore:
    """Model files under one directory; names may contain ``/`` (sub-directories)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, name: str) -> Path:
        path = (self._root / name).resolve()
        if not path.is_relative_to(self._root.resolve()):
            raise ValueError(f"artifact name {name!r} escapes the store")
        return path

    def put(self, name: str, data: bytes) -> None:
        """Write atomically: a reader never sees half a file."""
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, name: str) -> bytes:
        path = self._path(name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyError(name) from None
