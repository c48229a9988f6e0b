"""Rewards game throughput: concurrent ``POST /v1/plays`` on the local stack.

Two phases, each on a fresh gamified campaign of the demo retailer:

1. **odds** — ``--plays`` orders at ``--odds`` with a budget that never runs out: plays/s
   and latency when most plays lose (no slot claim) and some win (one slot claim each).
2. **budget** — ``--plays`` orders at odds 1 (every draw wins) against ``--slots`` budget
   slots: every play until exhaustion claims a slot, the last ones fight for the last
   free slots, the rest lose for ``budget_exhausted``. Checks wins x prize <= budget and
   the ledger afterwards.

Each request is a distinct order (a first play: draw, create, finish, publish); requests
are sent by ``--concurrency`` threads with keep-alive sessions.

    python -m bench.rewards --plays 400 --concurrency 16 --json .local/bench/rewards.json
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from bench.freeze import stack_env
from emulators.config import StackSettings
from shared.demo.probes import percentile


def _campaign(env: dict[str, str], odds: float, prize: Decimal, budget: Decimal) -> Any:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.campaigns.model import Campaign
    from shared.platform import clients

    now = datetime.now(UTC)
    campaign = Campaign(
        campaign_id=f"bench-game-{uuid.uuid4().hex[:8]}",
        name="bench game",
        retailer_ids=[env["DEMO_RETAILER_ID"]],
        experience_type="gamified_promotion",
        status="active",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
        targeted_brands=["B"],
        budget=budget,
        win_probability=odds,
        prize_value=prize,
    )
    FirestoreCampaignStore(clients.firestore_client(env["GOOGLE_CLOUD_PROJECT"])).put(campaign)
    return campaign


def _phase(
    env: dict[str, str], key: bytes, campaign: Any, plays: int, concurrency: int
) -> dict[str, Any]:
    from shared.decisions.play_tokens import VALIDITY, PlayGrant, sign

    expires = datetime.now(UTC) + VALIDITY
    tokens = [
        sign(
            PlayGrant(
                retailer_id=env["DEMO_RETAILER_ID"],
                shopper_id=f"bench-{n % 97}",
                order_id=f"{campaign.campaign_id}-o{n}",
                campaign_id=campaign.campaign_id,
                experience_id=f"{campaign.campaign_id}:play",
                expires_at=expires,
            ),
            key,
        )
        for n in range(plays)
    ]
    local = threading.local()
    url = f"{env['PLAYS_URL']}/v1/plays"
    headers = {"X-Api-Key": env["DEMO_API_KEY"]}

    def one(play_token: str) -> tuple[int, float, dict[str, Any]]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        sent = time.perf_counter()
        response = session.post(url, headers=headers, json={"play_token": play_token}, timeout=60)
        return response.status_code, time.perf_counter() - sent, response.json()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, tokens))
    elapsed = time.perf_counter() - started
    latencies = [r[1] for r in results]
    statuses: dict[str, int] = {}
    for status, _, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    wins = sum(1 for s, _, body in results if s == 201 and body["outcome"] == "won")
    return {
        "campaign_id": campaign.campaign_id,
        "plays": plays,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "plays_per_s": round(plays / elapsed, 1),
        "latency_ms": {
            q: round(percentile(latencies, v) * 1000, 1)
            for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        "statuses": statuses,
        "wins": wins,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from shared.rewards import composition as rewards_composition
    from shared.rewards.game import ledger
    from shared.system.resources import PLAYS_TOPIC, REWARDS_DATABASE

    settings = StackSettings()
    env = stack_env(settings)
    key = (settings.local_dir / "play-signing-key").read_text().strip().encode()
    odds_campaign = _campaign(env, args.odds, Decimal(1), Decimal(10**9))
    odds = _phase(env, key, odds_campaign, args.plays, args.concurrency)
    prize = Decimal(10)
    budget = prize * args.slots
    budget_campaign = _campaign(env, 1.0, prize, budget)
    spent = _phase(env, key, budget_campaign, args.plays, args.concurrency)
    built = rewards_composition.build(
        env["GOOGLE_CLOUD_PROJECT"], REWARDS_DATABASE, PLAYS_TOPIC, signing_key=""
    )
    found = ledger(built.rewards, budget_campaign.campaign_id)
    spent["budget"] = str(budget)
    spent["ledger"] = {"wins_owed": found.wins_owed, "owed": str(found.owed)}
    spent["budget_held"] = (
        spent["wins"] * prize <= budget and found.wins_owed == spent["wins"] == args.slots
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "odds_phase": odds | {"odds": args.odds},
        "budget_phase": spent | {"slots": args.slots},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.rewards", description=__doc__)
    parser.add_argument("--plays", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--odds", type=float, default=0.1)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    return 0 if result["budget_phase"]["budget_held"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
