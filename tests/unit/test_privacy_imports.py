"""The rewards vault is reachable only by the rewards (and erasure) code path: no module of
ingestion, freezing, decision or training imports its adapter, directly or through any
chain of imports (the import graph is read from the source, function-level and
TYPE_CHECKING imports included)."""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The entry points of ingestion, freezing, decision, experiences and training.
PERSONALIZATION_ROOTS = (
    "functions.ingest_events.main",
    "functions.freeze_events.main",
    "functions.freeze_events.worker",
    "functions.decide_events.main",
    "functions.decide_events.worker",
    "functions.freeze_decisions.worker",
    "functions.experiences.main",
    "functions.nightly_steps.main",
    "shared.nightly.training",
    "shared.nightly.features",
    "shared.nightly.scoring",
    "shared.nightly.service",
)
FORBIDDEN = (
    "shared.rewards.firestore_vault",
    "shared.rewards.composition",
    # The eraser registry reaches the vault: it stays out of these paths too.
    "shared.privacy.composition",
)


def module_path(module: str, root: Path = ROOT) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path, module: str) -> set[str]:
    """Every module a file imports (absolute names; ``from a import b`` gives ``a`` and
    ``a.b``, since ``b`` may be a module)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            found |= {f"{source}.{alias.name}" for alias in node.names}
    return found


def import_closure(roots: tuple[str, ...], root: Path = ROOT) -> dict[str, str]:
    """Every project module reachable from the roots, with the module that imported it."""
    seen: dict[str, str] = {r: "<root>" for r in roots}
    todo = list(roots)
    while todo:
        module = todo.pop()
        path = module_path(module, root)
        if path is None:
            continue
        for imported in imported_modules(path, module):
            parts = imported.split(".")
            # A package's __init__ runs on import of any of its modules.
            for depth in range(1, len(parts) + 1):
                name = ".".join(parts[:depth])
                if name not in seen and module_path(name, root) is not None:
                    seen[name] = module
                    todo.append(name)
    return seen


def violations(closure: dict[str, str]) -> dict[str, str]:
    return {
        module: importer
        for module, importer in closure.items()
        if any(fnmatch.fnmatch(module, pattern) for pattern in FORBIDDEN)
    }


def test_the_roots_exist() -> None:
    for root in PERSONALIZATION_ROOTS:
        assert module_path(root) is not None, root


def test_no_personalization_module_reaches_the_rewards_vault_adapter() -> None:
    closure = import_closure(PERSONALIZATION_ROOTS)
    assert "shared.ingestion.service" in closure and "shared.freezer.composition" in closure
    assert violations(closure) == {}


def test_the_check_catches_an_indirect_import(tmp_path: Path) -> None:
    """A vault import three hops away, inside a function, is found."""
    (tmp_path / "shared" / "rewards").mkdir(parents=True)
    (tmp_path / "functions" / "ingest_events").mkdir(parents=True)
    for package in ("shared", "shared/rewards", "functions", "functions/ingest_events"):
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "functions/ingest_events/main.py").write_text("from shared import helper\n")
    (tmp_path / "shared/helper.py").write_text(
        "def f():\n    from .rewards import firestore_vault\n"
    )
    (tmp_path / "shared/rewards/firestore_vault.py").write_text("X = 1\n")
    closure = import_closure(("functions.ingest_events.main",), tmp_path)
    assert violations(closure) == {"shared.rewards.firestore_vault": "shared.helper"}


@pytest.mark.parametrize("module", ["functions.privacy_maintenance.main"])
def test_the_privacy_path_does_reach_the_registry(module: str) -> None:
    """The check is not vacuous: the erasure path imports what the others must not."""
    assert "shared.privacy.composition" in import_closure((module,))
