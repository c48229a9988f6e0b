"""Source bundles: what Cloud Functions and Cloud Build receive, and their content hash.

Only a function's own folder is deployed and symlinks are not followed, so each bundle
copies ``shared/`` in. The object name carries a hash of the bundle's contents: when
nothing in it changed, the name is the same and nothing is redeployed.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

_SKIPPED_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}

RUNTIME_DOCKERFILE = """\
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
USER 65534
"""


@dataclass(frozen=True)
class Bundle:
    """Files by their path in the bundle, read once (what is hashed is what is uploaded),
    and the hash of their contents that names it."""

    name: str
    files: dict[str, bytes]

    @property
    def digest(self) -> str:
        sha = hashlib.sha256()
        for path in sorted(self.files):
            sha.update(path.encode())
            sha.update(b"\0")
            sha.update(hashlib.sha256(self.files[path]).digest())
        return sha.hexdigest()[:16]

    @property
    def object_name(self) -> str:
        return f"{self.name}-{self.digest}.zip"


def _tree(root: Path, folder: str) -> dict[str, bytes]:
    base = root / folder
    found: dict[str, bytes] = {}
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _SKIPPED_DIRS for part in relative.parts):
            continue
        if path.is_symlink() or not path.is_file() or path.suffix in _SKIPPED_SUFFIXES:
            continue
        found[relative.as_posix()] = path.read_bytes()
    return found


def requirements(root: Path) -> bytes:
    """The product's runtime dependencies, held to the versions tested (constraints.txt)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    lines = ["-c constraints.txt", *project["dependencies"]]
    return ("\n".join(lines) + "\n").encode()


def _common(root: Path) -> dict[str, bytes]:
    files = _tree(root, "shared")
    files["requirements.txt"] = requirements(root)
    files["constraints.txt"] = (root / "constraints.txt").read_bytes()
    init = root / "functions" / "__init__.py"
    if init.is_file():
        files["functions/__init__.py"] = init.read_bytes()
    return files


def function_bundle(root: Path, name: str) -> Bundle:
    """A Cloud Function's source: its folder at the root (``main.py``), and as a package
    (``functions/<name>/``, for its own imports), ``shared/``, requirements."""
    own = _tree(root, f"functions/{name}")
    if f"functions/{name}/main.py" not in own:
        raise FileNotFoundError(f"functions/{name}/main.py")
    files = _common(root)
    files.update(own)
    for path, data in own.items():
        files[path.removeprefix(f"functions/{name}/")] = data
    return Bundle(name=name, files=files)


def runtime_bundle(root: Path) -> Bundle:
    """The container image of the pull workers and jobs: every function and ``shared/``."""
    files = _common(root)
    files.update(_tree(root, "functions"))
    files["Dockerfile"] = RUNTIME_DOCKERFILE.encode()
    return Bundle(name="runtime", files=files)
