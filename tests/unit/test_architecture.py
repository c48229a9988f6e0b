"""The layout is the architecture, and it stays so (docs/ARCHITECTURE.md).

Read from the source (every import, function-level and TYPE_CHECKING ones included):
- ``shared/`` holds sub-packages only, plus ``__init__.py`` and the CLI entry point;
- no module of the product package imports a module that imports it back, directly or
  through a chain;
- the capability packages form a layered graph: leaving out ``system`` (the one resource
  declaration, which gathers every capability's tables and is read by all) and the entry
  points (the CLI, ``commands`` and the composition roots ``composition``: they wire other
  capabilities' adapters into a function or a command, above every package), no package
  reaches itself again;
- domain logic imports nothing from ``google.*``: only backend adapters (``bigquery_*``,
  ``bigtable_*``, ``firestore_*``, ``pubsub_*``), the clients, the transient-error table
  and the composition roots may;
- every package says what it is: its ``__init__`` docstring names the capability, its
  entry points and its stores;
- the docs name only paths and modules that exist.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
ADAPTER_PREFIXES = ("bigquery_", "bigtable_", "firestore_", "pubsub_", "storage_")
GOOGLE_ALLOWED = {"shared.platform.clients", "shared.platform.transient"}
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "bench" / "README.md",
    ROOT / "infra" / "pulumi" / "README.md",
    ROOT / "workflows" / "README.md",
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = SHARED) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(root.rglob("*.py"))}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The product modules a file imports (``from a import b``: ``a.b`` if it is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in known:
                    found.add(full)
                elif node.module in known:
                    found.add(node.module)
    return found


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    return {m: imports(p, known) - {m} for m, p in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def on_top(module: str) -> bool:
    """The entry points: the CLI, each capability's commands and composition roots wire
    the capabilities together, above them all."""
    return module == "shared.cli" or module.rsplit(".", 1)[-1] in ("composition", "commands")


def package_graph(edges: dict[str, set[str]], leave_out: str) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in edges.items():
        source = package_of(module)
        if source in ("", leave_out) or on_top(module):
            continue
        packages[source] |= {
            package_of(t)
            for t in targets
            if package_of(t) not in ("", source, leave_out) and not on_top(t)
        }
    return dict(packages)


def test_shared_holds_sub_packages_only() -> None:
    loose = sorted(p.name for p in SHARED.glob("*.py") if p.name not in ("__init__.py", "cli.py"))
    assert loose == []
    for folder in SHARED.iterdir():
        if folder.is_dir() and folder.name != "__pycache__":
            assert (folder / "__init__.py").exists(), folder


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    assert cycles(graph(modules())) == []


def test_the_check_finds_a_cycle_through_a_chain(tmp_path: Path) -> None:
    """Not vacuous: a three-module circle through a function-level import is found."""
    package = tmp_path / "shared" / "x"
    package.mkdir(parents=True)
    (tmp_path / "shared" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from shared.x.b import B\n")
    (package / "b.py").write_text("from shared.x import c\nB = 1\n")
    (package / "c.py").write_text("def f():\n    from shared.x.a import A\n")
    known = {
        ".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (tmp_path / "shared").rglob("*.py")
    }
    assert cycles(graph(known)) == [["shared.x.a", "shared.x.b", "shared.x.c"]]


def test_the_capabilities_are_layered_apart_from_the_declaration() -> None:
    layers = package_graph(graph(modules()), leave_out="system")
    assert cycles(layers) == [], layers
    # The bottom layers import no capability.
    assert layers.get("contract", set()) == set()
    assert layers.get("platform", set()) <= {"contract"}


def test_domain_logic_imports_nothing_from_google() -> None:
    offenders = {}
    for module, path in modules().items():
        leaf = module.rsplit(".", 1)[-1]
        if leaf.startswith(ADAPTER_PREFIXES) or leaf == "composition" or module in GOOGLE_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            if any(n == "google" or n.startswith("google.") for n in names):
                offenders[module] = node.lineno
    assert offenders == {}


def test_every_package_says_what_it_is() -> None:
    for init in sorted(SHARED.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc.split()) >= 25, f"{init}: a few lines on the capability"
        assert "Entry points" in doc and "Stores" in doc, init


_PATH = re.compile(
    r"(?<![\w./-])((?:shared|functions|bench|emulators|tests|infra|workflows|tracker)"
    r"/[\w./-]*[\w/])"
)
_MODULE = re.compile(r"(?<![\w.])(shared(?:\.\w+)+)")


def _exists(dotted: str) -> bool:
    """A module, a package, or a name defined in one (``shared.cli.main``)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 1, -1):
        base = ROOT.joinpath(*parts[:cut])
        source = (
            base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        )
        if source.exists():
            rest = parts[cut:]
            return (
                not rest or re.search(rf"\b{re.escape(rest[0])}\b", source.read_text()) is not None
            )
    return False


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_docs_name_only_paths_that_exist(doc: Path) -> None:
    text = doc.read_text()
    missing = set()
    for match in _PATH.finditer(text):
        path = match.group(1).rstrip(".")
        if text[match.end() : match.end() + 1] in ("*", "<", "{"):
            continue  # a pattern (tests/unit/test_infra_*.py, functions/<name>/)
        if not (ROOT / path).exists():
            missing.add(path)
    for match in _MODULE.finditer(text):
        dotted = match.group(1).rstrip(".")
        if not _exists(dotted):
            missing.add(dotted)
    assert sorted(missing) == []
