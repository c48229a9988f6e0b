"""Operators' rewards CLI: the payout ledger, marking wins paid.

    python -m shared.rewards.ledger_cli ledger CAMPAIGN_ID     # owed / paid / remaining (JSON)
    python -m shared.rewards.ledger_cli pay PLAY_ID [PLAY_ID...]  # mark claimed wins paid
    python -m shared.rewards.ledger_cli payable CAMPAIGN_ID
        # claimed, unpaid wins with their address
    python -m shared.rewards.ledger_cli reconcile CAMPAIGN_ID
        # Campaign.budget_exhausted from the ledger

Run with the operator's credentials (``GOOGLE_CLOUD_PROJECT``; locally the emulators'
hosts from ``.local/stack.env``). Every command is idempotent.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from shared.rewards.game import PlayRefusedError, ledger, pay


def _ledger_json(campaign_id: str, deps: Any) -> dict[str, Any]:
    found = ledger(deps, campaign_id)
    return {
        "campaign_id": found.campaign_id,
        "budget": str(found.budget),
        "prize_value": str(found.prize_value),
        "slots": found.slots,
        "wins_owed": found.wins_owed,
        "wins_paid": found.wins_paid,
        "owed": str(found.owed),
        "paid": str(found.paid),
        "remaining": str(found.remaining),
        "exhausted": found.exhausted,
    }


def _out(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")  # CLI output


def main(argv: list[str] | None = None) -> int:
    from shared.rewards import composition as rewards_composition
    from shared.system.settings import RewardsOpsSettings

    parser = argparse.ArgumentParser(prog="rewards", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("ledger", "payable", "reconcile"):
        commands.add_parser(name).add_argument("campaign_id")
    commands.add_parser("pay").add_argument("play_ids", nargs="+")
    args = parser.parse_args(argv)
    settings = RewardsOpsSettings()
    built = rewards_composition.build(
        settings.project, settings.rewards_database, settings.plays_topic, signing_key=""
    )
    deps = built.rewards
    try:
        if args.command == "ledger":
            _out(_ledger_json(args.campaign_id, deps))
        elif args.command == "reconcile":
            found = ledger(deps, args.campaign_id)
            deps.flags.set_exhausted(args.campaign_id, found.exhausted)
            _out(_ledger_json(args.campaign_id, deps))
        elif args.command == "payable":
            payable = []
            for entry in deps.slots.entries(args.campaign_id):
                email = built.vault.email_for(entry.play_id)
                if not entry.paid and email is not None:
                    payable.append(
                        {
                            "play_id": entry.play_id,
                            "prize_value": str(entry.prize_value),
                            "email": email,
                        }
                    )
            _out(payable)
        else:
            now = datetime.now(UTC)
            paid = [pay(deps, built.vault, play_id, now) for play_id in args.play_ids]
            _out([{"play_id": p.play_id, "paid_at": str(p.paid_at)} for p in paid])
    except PlayRefusedError as refusal:
        _out({"error": {"code": refusal.code, "message": refusal.message}})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
