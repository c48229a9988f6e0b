"""``make plan``: the deployment plan of a stack, for review, without cloud access.

Runs the program under Pulumi's mocks (``mockrun``) and prints every resource in
creation waves (a wave needs only earlier waves), each with its type, its parent
component and what it waits for; then the components, and the dependency rules'
verdict (``graph``). Exits 1 when a rule is broken. Secrets are given placeholder
values: the plan is that of a stack whose secrets are configured (the program refuses
one that is not).

    python -m cartwise_infra.plan [--stack prod|dev]   (from infra/pulumi)
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

from cartwise_infra.config import stack_file
from cartwise_infra.graph import Graph, Node
from cartwise_infra.mockrun import run
from shared.system.resources import SYSTEM

ROOT = Path(__file__).resolve().parents[3]
PULUMI_DIR = ROOT / "infra" / "pulumi"


def _short(graph: Graph, urn: str | None) -> str:
    node = graph.nodes.get(urn or "")
    if node is None:
        return "(stack)"
    return f"{node.type.rsplit(':', 1)[-1]} {node.name}"


def render(graph: Graph, out: TextIO) -> None:
    waves = graph.waves()
    custom = graph.custom()
    for number, wave in enumerate(waves):
        out.write(f"\nwave {number} ({len(wave)} resources)\n")
        for node in wave:
            out.write(f"  {node.type}  {node.name}\n")
            out.write(f"      parent: {_short(graph, node.parent)}\n")
            needs = sorted(graph.nodes[d].name for d in node.dependencies if d in graph.nodes)
            out.write(f"      needs:  {', '.join(needs) if needs else '-'}\n")
    components: list[Node] = [n for n in graph.nodes.values() if not n.custom]
    children = Counter(n.parent for n in custom)
    out.write(f"\ncomponents ({len(components)})\n")
    for node in sorted(components, key=lambda n: (n.type, n.name)):
        out.write(f"  {node.type}  {node.name}  ({children[node.urn]} resources)\n")
    kinds = Counter(n.type for n in custom)
    out.write(f"\n{len(custom)} resources in {len(waves)} waves, {len(kinds)} types\n")


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="prod", help="Pulumi.<stack>.yaml (default prod)")
    args = parser.parse_args(argv)
    stack = stack_file(PULUMI_DIR / f"Pulumi.{args.stack}.yaml")
    placeholders = {s.name: f"<cartwise:{s.name} from the stack>" for s in SYSTEM.secrets}
    graph = run(SYSTEM, stack, ROOT, secret_values=placeholders).graph
    out.write(
        f"cartwise deployment plan: stack {args.stack}, project {stack.project}, "
        f"region {stack.region} (Pulumi mocks: no cloud reached, nothing changed)\n"
    )
    render(graph, out)
    violations = graph.violations()
    if violations:
        out.write(f"dependency rules: {len(violations)} broken\n")
        for violation in violations:
            out.write(f"  {violation}\n")
        return 1
    out.write(
        "dependency rules: ok (apis, service-agents, secrets, build-identity, references, "
        "log-metrics)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
