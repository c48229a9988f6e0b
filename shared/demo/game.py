"""The demo's game: a gamified promotion created by a CSM through the campaigns API, and
what became of it, read back from the stores.

``create_game`` does what a CSM does in the back office: "buy these products of brand X
(at least this much) and play to win your basket", with odds, a prize, a budget and a
control group, live in seconds (docs/CAMPAIGNS.md). The brand is the manufacturer most
bought in the baskets about to be replayed (the data set names manufacturers, not brands:
``tracker_simulator.brand_of``). ``game_figures`` reads the campaign's report
(invitations, plays, wins, cost against the budget) and the rewards ledger (owed, paid,
remaining).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.journey.dataset import Basket, Product

GAME_PREFIX = "demo-game"
TIMEOUT = 60


@dataclass(frozen=True)
class GameRules:
    """What the CSM sets (the demo's choice, stated in the story)."""

    min_spend: Decimal = Decimal("2.00")  # on the targeted products, in the order
    win_probability: float = 0.3
    prize_value: Decimal = Decimal("10.00")
    budget: Decimal = Decimal("60.00")  # six prizes: the budget may run out in the demo
    control_share: float = 0.1


@dataclass(frozen=True)
class GameFigures:
    campaign: dict[str, Any]  # the report's campaign block
    rules: dict[str, str]
    invitations: dict[str, int]  # the play experience's decisions: outcome -> count
    shoppers: dict[str, Any]  # exposed, held out
    participation: dict[str, Any]  # plays, players, wins, cost, budget share
    ledger: dict[str, Any]  # owed, paid, remaining, exhausted


def favourite_brand(baskets: Iterable[Basket], products: Mapping[int, Product]) -> str:
    """The manufacturer brand in most of these baskets (not a private label)."""
    from shared.journey.tracker_simulator import brand_of

    brands: Counter[str] = Counter()
    for basket in baskets:
        brands.update(
            {
                brand
                for line in basket.lines
                if (brand := brand_of(products.get(line.product_id))) not in (None, "PRIVATE LABEL")
            }
        )
    if not brands:
        raise ValueError("no branded product in the replayed baskets")
    return brands.most_common(1)[0][0]


def create_game(
    env: Mapping[str, str],
    retailers: list[str],
    brand: str,
    now: datetime,
    rules: GameRules = GameRules(),
) -> dict[str, Any]:
    """Create the game through ``POST /v1/campaigns`` (``active``), as the demo's CSM, on
    every product of ``brand``; the demo games of earlier runs are archived first (they
    would conflict)."""
    import requests

    url = env["CAMPAIGNS_URL"].rstrip("/") + "/v1/campaigns"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {env['DEMO_CSM_KEY']}"
    listed = session.get(url, timeout=TIMEOUT)
    listed.raise_for_status()
    for campaign in listed.json()["campaigns"]:
        if campaign["campaign_id"].startswith(GAME_PREFIX) and campaign["status"] != "archived":
            session.post(f"{url}/{campaign['campaign_id']}/archive", timeout=TIMEOUT)
    body = {
        "campaign_id": f"{GAME_PREFIX}-{now:%Y%m%d-%H%M%S}",
        "name": f"Buy {brand}, play to win your basket",
        "brand": brand,
        "retailer_ids": retailers,
        "experience_type": "gamified_promotion",
        "status": "active",
        "starts_at": (now - timedelta(days=7)).isoformat(),
        "ends_at": (now + timedelta(days=14)).isoformat(),
        "targeted_brands": [brand],
        # The brand comes from the replayed baskets: on a stack without history (a demo
        # run with --skip-history on a fresh stack) no read model has seen it yet.
        "allow_unseen_targets": True,
        "threshold": str(rules.min_spend),
        "win_probability": rules.win_probability,
        "prize_value": str(rules.prize_value),
        "budget": str(rules.budget),
        "control_share": rules.control_share,
        "reward": "your whole basket refunded",
        "creative": {
            "title": "Play to win your basket",
            "text": f"You bought {brand}: one play, one chance to get your basket back.",
        },
    }
    created = session.post(url, json=body, timeout=TIMEOUT)
    if created.status_code != 201:
        raise RuntimeError(f"the game could not be created: {created.status_code} {created.text}")
    return dict(created.json())


def game_figures(env: Mapping[str, str], campaign_id: str, now: datetime) -> GameFigures:
    """The game as the stores saw it: its report, and the ledger of the rewards vault."""
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.campaigns.report import campaign_report
    from shared.freezer.read_models import DATASET
    from shared.platform import clients
    from shared.platform.bigquery_warehouse import BigQueryWarehouse
    from shared.rewards import composition as rewards
    from shared.rewards.game import ledger
    from shared.system.resources import PLAYS_TOPIC, REWARDS_DATABASE

    project = env["GOOGLE_CLOUD_PROJECT"]
    bigquery = clients.bigquery_client(project, env.get("BIGQUERY_EMULATOR_HOST"))
    warehouse = BigQueryWarehouse(bigquery, project, DATASET, ())
    campaign = FirestoreCampaignStore(clients.firestore_client(project)).get(campaign_id)
    if campaign is None:
        raise ValueError(f"no campaign {campaign_id}")
    report = campaign_report(campaign, warehouse, project, DATASET, now)
    built = rewards.build(project, REWARDS_DATABASE, PLAYS_TOPIC, signing_key="")
    found = ledger(built.rewards, campaign_id)
    # Claimed wins: the play's flag (the address itself stays in the vault, unread here).
    wins = [built.rewards.plays.get(e.play_id) for e in built.rewards.slots.entries(campaign_id)]
    claimed = sum(1 for w in wins if w is not None and w[0].claimed)
    table = f"`{project}.{DATASET}.decision_experiences`"  # names of ours, not input
    # Invitations: the decisions on qualifying orders that considered the play (shown,
    # held out, or withheld once the budget ran out); not the game's tension cart.
    invitations = warehouse.query(
        f"SELECT outcome, COUNT(*) AS n FROM {table} "  # noqa: S608
        "WHERE campaign_id = @campaign AND experience_type = 'gamified_promotion' "
        "GROUP BY outcome",
        {"campaign": campaign_id},
    )
    return GameFigures(
        campaign=report["campaign"],
        rules={
            "targeted products": f"every product of {', '.join(campaign.targeted_brands)}",
            "minimum spend on them": str(campaign.threshold),
            "odds of a play winning": f"{campaign.win_probability}",
            "prize": str(campaign.prize_value),
            "budget": str(campaign.budget),
            "control share": f"{campaign.control_share}",
        },
        invitations={str(r["outcome"]): int(r["n"]) for r in invitations},
        shoppers=report["shoppers"],
        participation=report["participation"],
        ledger={
            "slots": found.slots,
            "wins_owed": found.wins_owed,
            "wins_paid": found.wins_paid,
            "wins_claimed": claimed,
            "owed": str(found.owed),
            "paid": str(found.paid),
            "remaining": str(found.remaining),
            "exhausted": found.exhausted,
        },
    )
