"""The ``cartwise`` command line (README: the commands table).

One entry module: it builds the parser from each capability's commands (``register`` in
``shared/<capability>/commands.py``) and runs the one asked for.
"""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    """Every ``cartwise`` command, each registered by its capability."""
    from shared.campaigns import commands as campaigns
    from shared.decisions import commands as decisions
    from shared.demo import commands as demo
    from shared.freezer import commands as freezer
    from shared.journey import commands as journey
    from shared.nightly import commands as nightly
    from shared.privacy import commands as privacy
    from shared.retailers import commands as retailers

    root = argparse.ArgumentParser(prog="cartwise")
    subcommands = root.add_subparsers(dest="command", required=True)
    for capability in (demo, privacy, freezer, journey, decisions, nightly, campaigns, retailers):
        capability.register(subcommands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
