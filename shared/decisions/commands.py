"""The decisions' command: ``cartwise compile-trees`` (each retailer's default tree)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from shared.platform.terminal import environment


def compile_trees_command(args: argparse.Namespace) -> int:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.decisions.bigtable_state import BigtableTrees
    from shared.decisions.compiler import compile_default_tree
    from shared.platform import clients
    from shared.system.resources import BIGTABLE_INSTANCE

    project = environment()
    now = datetime.now(UTC)
    campaigns = FirestoreCampaignStore(clients.firestore_client(project)).active()
    retailers = sorted({r for c in campaigns for r in c.retailer_ids} | set(args.retailer or []))
    trees = [compile_default_tree(retailer, campaigns, now) for retailer in retailers]
    BigtableTrees(clients.bigtable_client(project), BIGTABLE_INSTANCE).put(trees)
    for tree in trees:
        print(
            f"{tree.retailer_id}: default tree {tree.tree_version}, "
            f"{len(tree.campaigns)} live campaigns, {len(tree.nodes)} nodes, "
            f"{len(tree.serialize()):,} bytes, valid until {tree.valid_until:%Y-%m-%d %H:%M}"
        )
    return 0


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``compile-trees``."""
    compile_parser = subcommands.add_parser(
        "compile-trees", help="compile each retailer's default tree from its live campaigns"
    )
    compile_parser.add_argument(
        "--retailer", action="append", help="also compile this retailer (even with none live)"
    )
    compile_parser.set_defaults(run=compile_trees_command)
