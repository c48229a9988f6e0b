"""The nightly's offer policy step on the BigQuery and Cloud Storage emulators.

Three weeks of a personalized promotion's logs are written into a dataset of the test's
own, as the freezer would have: a decision per shopper and week (held out, or shown at the
level of the policy in force, the uniform one, with 30 % explored and its propensity), and
the order lines that followed, from the simulated shoppers of
``shared.journey.offer_trial`` (heterogeneous effects known in advance), with eight weeks
of history before. The step learns from them through its SQL, publishes the policy (the
gate: it beats the uniform one on held-out shoppers), the shard's features of each shopper
are checked against values computed here from the written lines, and the trees take the
learnt levels.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from shared.campaigns.model import Campaign
from shared.decisions.compiler import compile_personal_tree
from shared.decisions.read_models import DECISION_EXPERIENCES
from shared.decisions.trees import PersonalizedPromotion
from shared.freezer.read_models import SOLD_PRODUCTS
from shared.journey.offer_trial import (
    OfferShape,
    UniformPolicy,
    outcome,
    population,
    week,
)
from shared.nightly.bigquery_outputs import BigQueryNightlyOutputs
from shared.nightly.context import StepContext
from shared.nightly.features import end_of_history
from shared.nightly.offers import (
    FEATURES,
    learn_offer_policy,
    learnt_levels,
    load_policy,
    offer_rows,
    write_shopper_features,
)
from shared.nightly.shards import WHOLE, fill_buckets_sql
from shared.nightly.storage_artifacts import GcsArtifactStore
from shared.nightly.tables import NIGHTLY_SHOPPERS, NIGHTLY_TABLES, SHOPPER_PRODUCT_SCORES
from shared.offers.learning import CONTROL
from shared.offers.levels import explore, offer_levels, week_of
from shared.platform import clients
from shared.platform.bigquery_warehouse import BigQueryWarehouse
from shared.platform.resource_model import bucket_name
from shared.system.resources import NIGHTLY_ARTIFACTS_BUCKET
from tests.integration.owned_data import empty_dataset

pytestmark = pytest.mark.integration

SEED = 31
SHOPPERS = 4_000
LOG_WEEKS = 3
HISTORY_WEEKS = 8
CUTOFF = date(2026, 11, 29)  # a Sunday: the three log weeks end with it
SHAPE = OfferShape(shoppers=SHOPPERS, explore_share=0.3)


@pytest.fixture(scope="module")
def dataset(stack: dict[str, str]) -> Iterator[str]:
    tables = (SOLD_PRODUCTS, DECISION_EXPERIENCES, *NIGHTLY_TABLES)
    with empty_dataset(stack, "offers", tables) as name:
        yield name


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _logs(retailer: str, campaign: Campaign) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(decision_experiences rows, sold_products rows) of the simulated shoppers."""
    people = population(SEED, SHAPE)
    levels = offer_levels(campaign.generosity_pct, campaign.generosity_min_pct)
    in_force = UniformPolicy(levels, SHAPE).levels_for(people.features)
    end = end_of_history(CUTOFF)
    rng = np.random.default_rng(SEED)
    decisions: list[dict[str, Any]] = []
    sold: list[dict[str, Any]] = []

    def line(
        shopper: str,
        at: datetime,
        order: str,
        n: int,
        product: str,
        amount: float,
        discount: float = 0.0,
    ) -> dict[str, Any]:
        return {
            "row_id": f"{retailer}/{order}:{n}",
            "event_id": order,
            "retailer_id": retailer,
            "shopper_id": shopper,
            "occurred_at": at,
            "ingested_at": at,
            "order_id": order,
            "line_number": n,
            "product_id": product,
            "quantity": 1,
            "unit_price": _money(amount + discount),
            "discount": _money(discount),
            "amount": _money(amount),
        }

    first_log_week = end - timedelta(weeks=LOG_WEEKS)
    for w in range(-HISTORY_WEEKS, LOG_WEEKS):
        monday = first_log_week + timedelta(weeks=w)
        if w < 0:  # history: what the shoppers bought, no offer
            bought = rng.random(SHOPPERS) < people.buys
            sales = bought * people.base * rng.lognormal(-0.125, 0.5, SHOPPERS)
            arm = np.full(SHOPPERS, CONTROL)
        else:
            draws = week(SEED, w + 1, people)
            arm = np.full(SHOPPERS, CONTROL)
            offers = {}
            for i in range(SHOPPERS):
                if people.held[i]:
                    continue
                offers[i] = explore(
                    levels[in_force[i]],
                    levels,
                    SHAPE.explore_share,
                    campaign_id=campaign.campaign_id,
                    retailer_id=retailer,
                    shopper_id=f"o{i}",
                    period=week_of(monday + timedelta(days=1)),
                )
                arm[i] = levels.index(offers[i].level)
            sales, _ = outcome(people, draws, levels, arm, SHAPE)
        promoted = rng.random(SHOPPERS) < people.features[:, 2]
        for i in range(SHOPPERS):
            shopper = f"o{i}"
            decided = monday + timedelta(days=1, hours=10)
            if w >= 0:
                offer = offers.get(i)
                decisions.append(
                    {
                        "row_id": f"{retailer}/d{w}-{i}:{campaign.campaign_id}:promotion",
                        "event_id": f"d{w}-{i}",
                        "retailer_id": retailer,
                        "shopper_id": shopper,
                        "occurred_at": decided,
                        "tree_version": "t",
                        "node_id": campaign.campaign_id,
                        "experience_id": f"{campaign.campaign_id}:promotion",
                        "experience_type": "personalized_promotion",
                        "campaign_id": campaign.campaign_id,
                        "outcome": "held_out" if offer is None else "shown",
                        "offer_policy": None if offer is None else "campaign",
                        "offer_level": None if offer is None else offer.level.name,
                        "offer_policy_level": None if offer is None else levels[in_force[i]].name,
                        "offer_chosen_by": None if offer is None else offer.chosen_by,
                        "offer_propensity": None if offer is None else offer.propensity,
                    }
                )
            order = f"{shopper}-w{w}"
            paid = decided + timedelta(hours=1)
            sold.append(line(shopper, paid, order, 0, "other-1", 10.0, 2.0 if promoted[i] else 0))
            if sales[i] >= 0.01:
                sold.append(line(shopper, paid, order, 1, "t-1", float(sales[i])))
    return decisions, sold


def _monday(week: int) -> datetime:
    """The Monday starting a week numbered as the SQL numbers them (from 1969-12-29)."""
    return datetime(1969, 12, 29, tzinfo=UTC) + timedelta(weeks=week)


def _expected_features(sold: list[dict[str, Any]], as_of: datetime) -> dict[str, list[float]]:
    """The features, computed here from the written lines (8 weeks before ``as_of``)."""
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sold:
        at = row["occurred_at"]
        if as_of - timedelta(days=56) <= at < as_of:
            lines[row["shopper_id"]].append(row)
    out = {}
    for shopper, rows in lines.items():
        targeted = [r for r in rows if r["product_id"] == "t-1"]
        orders = {r["order_id"] for r in rows}
        total = sum(float(r["amount"]) for r in rows)
        weeks = {r["occurred_at"].isocalendar()[:2] for r in targeted}
        out[shopper] = [
            len(weeks) / 8,
            sum(float(r["amount"]) for r in targeted) / 8,
            len(orders) / 8,
            total / len(orders),
            sum(float(r["amount"]) for r in rows if float(r["discount"]) > 0) / total,
        ]
    return out


@pytest.mark.heavy
def test_the_nightly_learns_the_offer_policy_and_the_trees_take_it(
    stack: dict[str, str], dataset: str
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    warehouse = BigQueryWarehouse(
        client, project, dataset, (SOLD_PRODUCTS, DECISION_EXPERIENCES, *NIGHTLY_TABLES)
    )
    unique = uuid.uuid4().hex[:8]
    # Fixed ids (the dataset is the test's own): the exploration draws and the held-out
    # sample hash them, so the logs and the learnt model are the same on every run.
    retailer = "r-offers"
    now = datetime(2026, 11, 30, tzinfo=UTC)
    campaign = Campaign(
        campaign_id="c-offer",
        name="offer",
        retailer_ids=[retailer],
        experience_type="personalized_promotion",
        status="active",
        starts_at=now - timedelta(weeks=12),
        ends_at=now + timedelta(weeks=4),
        targeted_product_ids=["t-1"],
        generosity_pct=Decimal(20),
        generosity_min_pct=Decimal(5),
        threshold=Decimal(8),
        explore_share=SHAPE.explore_share,
        budget=Decimal(50_000),  # ample: the multiplier is computed, and 0
    )
    decisions, sold = _logs(retailer, campaign)
    warehouse.append_rows(DECISION_EXPERIENCES.name, decisions)
    warehouse.append_rows(SOLD_PRODUCTS.name, sold)
    run_id = f"offers-{unique}"
    storage = clients.storage_client(project)
    ctx = StepContext(
        run_id=run_id,
        cutoff=CUTOFF,
        project=project,
        dataset=dataset,
        warehouse=warehouse,
        artifacts=GcsArtifactStore(storage, bucket_name(project, NIGHTLY_ARTIFACTS_BUCKET), run_id),
    )

    summary = learn_offer_policy(ctx, [campaign])
    # One learning row per shopper and week, each with its decision.
    assert summary["rows"] == SHOPPERS * LOG_WEEKS, summary
    assert summary["published"] and summary["policy"] == f"learnt:{run_id}", summary
    assert summary["gate"]["ci95"][0] > 0
    assert summary["value_learnt"]["value"] > summary["value_in_force"]["value"]
    assert summary["budget_multipliers"] == {campaign.campaign_id: 0.0}
    policy = load_policy(ctx)  # from the bucket, as a shard on another machine reads it
    # Each learning row's outcome: the targeted sales after its decision, that week.
    learnt_from, _, _ = offer_rows(ctx)
    targeted: dict[str, float] = defaultdict(float)
    for row in sold:
        if row["product_id"] == "t-1":
            targeted[row["order_id"]] += float(row["amount"])
    weeks = sorted({r["week"] for r in learnt_from})
    assert len(weeks) == LOG_WEEKS
    before = {w: _expected_features(sold, _monday(w)) for w in weeks}
    for row in learnt_from:
        order = f"{row['shopper_id']}-w{weeks.index(row['week'])}"
        assert row["sales"] == pytest.approx(targeted.get(order, 0.0)), row
        history = before[row["week"]].get(row["shopper_id"], [0.0] * len(FEATURES))
        assert [row[name] for name in FEATURES] == pytest.approx(history), row

    # The shard's features: scored shoppers towards each live promotion, as of tonight.

    def fill_buckets(table: str) -> None:
        warehouse.execute(fill_buckets_sql(f"`{project}.{dataset}.{table}`"), {"run_id": run_id})

    as_of = end_of_history(CUTOFF)
    scored = [f"o{i}" for i in range(0, SHOPPERS, 40)]
    warehouse.append_rows(
        NIGHTLY_SHOPPERS.name,
        [
            {
                "run_id": run_id,
                "boundary": as_of,
                "role": "score",
                "retailer_id": retailer,
                "shopper_id": s,
            }
            for s in scored
        ],
    )
    fill_buckets(NIGHTLY_SHOPPERS.name)  # the features step writes them
    assert write_shopper_features(ctx, "TRUE") == len(scored)
    rows = warehouse.query(
        f"SELECT shopper_id, campaign_id, {', '.join(FEATURES)} "
        f"FROM `{project}.{dataset}.shopper_offer_features` WHERE run_id = @run_id",
        {"run_id": run_id},
    )
    expected = _expected_features(sold, as_of)
    for row in rows:
        assert row["campaign_id"] == campaign.campaign_id
        assert [row[name] for name in FEATURES] == pytest.approx(expected[row["shopper_id"]])

    # The compile reads them with each scored shopper's outputs (one packed row each).
    warehouse.append_rows(
        SHOPPER_PRODUCT_SCORES.name,
        [
            {
                "run_id": run_id,
                "retailer_id": retailer,
                "shopper_id": s,
                "product_id": "t-1",
                "rank": 1,
                "score": 0.5,
            }
            for s in scored
        ],
    )
    fill_buckets(SHOPPER_PRODUCT_SCORES.name)
    outputs = BigQueryNightlyOutputs(
        client,
        project,
        dataset,
        clients.bigquery_read_client(stack.get("BIGQUERY_STORAGE_EMULATOR_HOST")),
    )
    packed = {
        o.shopper_id: o.offer_features
        for batch in outputs.shopper_batches(run_id, WHOLE, 25)
        for o in batch
    }
    assert set(packed) == set(scored)
    for row in rows:
        assert packed[row["shopper_id"]] == {
            campaign.campaign_id: pytest.approx(tuple(row[name] for name in FEATURES))
        }

    # The trees take the learnt level, within the campaign's bounds.
    people = population(SEED, SHAPE)
    chosen_generosity: dict[str, list[Decimal]] = defaultdict(list)
    for row in rows:
        features = {campaign.campaign_id: tuple(float(row[n]) for n in FEATURES)}
        level = learnt_levels(policy, {campaign.campaign_id: campaign}, features)[
            campaign.campaign_id
        ]
        assert Decimal(5) <= level.generosity_pct <= Decimal(20)
        tree = compile_personal_tree(
            retailer,
            row["shopper_id"],
            scores=[],
            complements={},
            profile=None,
            campaigns=[campaign],
            now=now,
            run_id=run_id,
            new_products=["t-1"],
            offers={campaign.campaign_id: level},
            offer_policy=f"learnt:{run_id}",
        )
        (promotion,) = [
            e for e in tree.experiences.values() if isinstance(e, PersonalizedPromotion)
        ]
        assert promotion.offer is not None and promotion.offer.policy == f"learnt:{run_id}"
        assert promotion.generosity_pct == level.generosity_pct
        kind = int(people.kind[int(row["shopper_id"][1:])])
        chosen_generosity[("sure", "small", "large", "never")[kind]].append(level.generosity_pct)
    # Shoppers who buy anyway are offered the least (the discount would be pure cost).
    sure = chosen_generosity["sure"]
    assert sum(g == Decimal(5) for g in sure) > 0.7 * len(sure), chosen_generosity
