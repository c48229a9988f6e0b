"""The four modelling steps of the nightly run on a slice of the Complete Journey.

A fresh dataset gets the read models and the nightly tables; 18 weeks of 120 households
are backfilled into it; features, train, evaluate and score run on the BigQuery
emulator, twice for score (idempotent per run).
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest

from shared.nightly.bigquery_outputs import BigQueryNightlyOutputs
from shared.nightly.complements import MIN_PAIR_SUPPORT
from shared.nightly.context import StepContext
from shared.nightly.evaluation import evaluation_sample
from shared.nightly.scoring import score_shard
from shared.nightly.shards import BUCKET, BUCKETS, Shard
from shared.nightly.steps import STEPS
from shared.nightly.storage_artifacts import GcsArtifactStore
from shared.nightly.tables import NIGHTLY_TABLES
from shared.nightly.training import load_candidates, training_sample
from shared.platform import clients
from shared.platform.bigquery_warehouse import BigQueryWarehouse
from shared.platform.resource_model import bucket_name
from shared.system.resources import NIGHTLY_ARTIFACTS_BUCKET
from tests.integration.owned_data import owned_dataset

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sliced(stack: dict[str, str]) -> Iterator[tuple[str, object]]:
    """A dataset with 18 weeks of 120 households, and the nightly tables; dropped after."""
    client = clients.bigquery_client(stack["GOOGLE_CLOUD_PROJECT"], stack["BIGQUERY_EMULATOR_HOST"])
    with owned_dataset(stack, "36-53", 120) as name:
        yield name, client


@pytest.mark.heavy
def test_the_four_steps_fill_their_tables_with_sane_figures(
    stack: dict[str, str], sliced: tuple[str, object]
) -> None:
    dataset, client = sliced
    project = stack["GOOGLE_CLOUD_PROJECT"]
    warehouse = BigQueryWarehouse(client, project, dataset, NIGHTLY_TABLES)
    (end,) = warehouse.query(
        f"SELECT DATE(MAX(occurred_at)) AS day FROM `{project}.{dataset}.orders`"
    )
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    storage = clients.storage_client(project)
    artifacts = GcsArtifactStore(storage, bucket_name(project, NIGHTLY_ARTIFACTS_BUCKET), run_id)
    ctx = StepContext(
        run_id=run_id,
        cutoff=end["day"],
        project=project,
        dataset=dataset,
        warehouse=warehouse,
        artifacts=artifacts,
    )
    assert set(STEPS) == {"features", "train", "evaluate", "score"}

    features = STEPS["features"](ctx)
    candidates = features["nightly_candidates"]
    assert isinstance(candidates, dict)
    assert candidates["train"] > 0 and candidates["evaluate"] > 0 and candidates["score"] > 0

    # The training sample: about the asked number of train shoppers, by a stable hash.
    sampled_ctx = dataclasses.replace(ctx, train_shoppers=100)
    predicate, about = training_sample(sampled_ctx)
    assert predicate is not None and about["sample"] == "hash", about
    available = about["shoppers_available"]
    assert isinstance(available, int) and available > 100
    (row,) = warehouse.query(
        f"SELECT COUNT(DISTINCT CONCAT(retailer_id, '/', shopper_id)) AS n "
        f"FROM `{project}.{dataset}.nightly_shoppers` "
        f"WHERE run_id = @run_id AND role = 'train' AND {predicate}",
        {"run_id": run_id},
    )
    assert 50 <= row["n"] <= 150, (row["n"], available)  # binomial around 100
    kept = load_candidates(sampled_ctx, "train", predicate)
    assert 0 < len({key[1:] for key in kept.keys}) <= row["n"]  # the sample's, and only
    assert training_sample(dataclasses.replace(ctx, train_shoppers=10**6))[0] is None

    trained = STEPS["train"](ctx)
    positives = trained["positives"]
    assert isinstance(positives, int) and positives > 0
    assert artifacts.names() == [
        f"nightly/{run_id}/{name}" for name in ("basket_value.txt", "ranker.txt", "training.json")
    ]
    assert artifacts.get(f"nightly/{run_id}/ranker.txt")

    # The evaluation sample: every figure of the step counts the sampled shoppers only
    # (its own salt: not the training sample's shoppers).
    eval_ctx = dataclasses.replace(ctx, evaluate_shoppers=40)
    predicate, _ = evaluation_sample(eval_ctx)
    assert predicate is not None
    (row,) = warehouse.query(
        f"SELECT COUNT(DISTINCT CONCAT(retailer_id, '/', shopper_id)) AS n "
        f"FROM `{project}.{dataset}.nightly_shoppers` "
        f"WHERE run_id = @run_id AND role = 'evaluate' AND {predicate}",
        {"run_id": run_id},
    )
    in_sample = row["n"]
    assert 15 <= in_sample <= 70, in_sample  # binomial around 40
    sampled = STEPS["evaluate"](eval_ctx)
    assert isinstance(sampled["evaluation_sample"], dict)
    assert sampled["evaluation_sample"]["sample"] == "hash"
    sampled_table = sampled["table"]
    assert isinstance(sampled_table, list) and sampled_table
    beyond = [(r["method"], r["shoppers"]) for r in sampled_table if r["shoppers"] > in_sample]
    assert not beyond and all(r["shoppers"] > 0 for r in sampled_table), beyond
    assert {r["target"] for r in sampled_table} >= {"next_basket", "next_basket_new_items"}

    evaluated = STEPS["evaluate"](ctx)
    assert evaluated["evaluation_sample"] == {"sample": "all"}
    assert isinstance(evaluated["gate_passed"], bool)
    table = evaluated["table"]
    assert isinstance(table, list) and table
    assert max(r["shoppers"] for r in table) > in_sample
    stored = warehouse.query(
        f"SELECT * FROM `{project}.{dataset}.model_evaluations` WHERE run_id = @run_id",
        {"run_id": ctx.run_id},
    )
    assert len(stored) == len(table)
    methods = {(r["level"], r["target"], r["method"]) for r in stored if r["metric"] == "recall@10"}
    for method in ("ranker", "p_topfreq", "g_topfreq", "p_topfreq_decay56"):
        assert ("product", "next_basket", method) in methods
        assert ("manufacturer_category", "next_28_days", method) in methods
    for row in stored:
        if row["metric"] in ("recall@10", "ndcg@10") and " - " not in row["method"]:
            assert 0.0 <= row["value"] <= 1.0
            assert row["ci_low"] <= row["value"] <= row["ci_high"]
            assert row["shoppers"] > 0
    # Shoppers in the evaluation bought something in the held-out weeks: the ranker finds
    # some of it.
    ranker = next(
        r
        for r in stored
        if (r["level"], r["target"], r["method"], r["metric"])
        == ("product", "next_basket", "ranker", "recall@10")
    )
    assert ranker["value"] > 0.0

    # The score step writes the complements; two shards write their shoppers' rows. A
    # re-run replaces the run's rows (the step's) or the shard's (a task's); the shards
    # together cover every shopper once.
    counts: dict[str, int] = {}
    for _ in range(2):
        counts = {k: v for k, v in STEPS["score"](ctx).items() if isinstance(v, int)}
    by_shard = [score_shard(ctx, Shard(i, 2)) for i in (0, 1)]
    by_shard[1] = score_shard(ctx, Shard(1, 2))
    for table in ("shopper_product_scores", "shopper_new_products", "shopper_spend_profiles"):
        parts = [s[table] for s in by_shard]
        assert all(isinstance(p, int) and p > 0 for p in parts), (table, parts)
        counts[table] = sum(p for p in parts if isinstance(p, int))
    # Each shopper has one shard bucket, the same in every per-shopper table of the run;
    # the two shards' shoppers are disjoint.
    buckets: dict[str, set[int | None]] = defaultdict(set)
    for table in (
        "nightly_candidates",
        "nightly_shoppers",
        "shopper_product_scores",
        "shopper_new_products",
        "shopper_spend_profiles",
    ):
        for r in warehouse.query(
            f"SELECT DISTINCT shopper_id, {BUCKET} FROM `{project}.{dataset}.{table}` "
            "WHERE run_id = @run_id",
            {"run_id": ctx.run_id},
        ):
            buckets[r["shopper_id"]].add(r[BUCKET])
    assert buckets and all(
        len(b) == 1 and all(x is not None and 0 <= x < BUCKETS for x in b) for b in buckets.values()
    )
    halves = [{s for s, (b,) in buckets.items() if b in Shard(i, 2).buckets} for i in (0, 1)]
    assert halves[0] and halves[1] and halves[0] | halves[1] == set(buckets)
    scores = warehouse.query(
        f"SELECT retailer_id, shopper_id, product_id, rank, score FROM "
        f"`{project}.{dataset}.shopper_product_scores` WHERE run_id = @run_id",
        {"run_id": ctx.run_id},
    )
    assert len(scores) == counts["shopper_product_scores"] > 0
    ranks = Counter((r["retailer_id"], r["shopper_id"]) for r in scores)
    assert all(n <= 20 for n in ranks.values())
    by_shopper: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in scores:
        key = (r["retailer_id"], r["shopper_id"])
        by_shopper.setdefault(key, []).append((r["rank"], r["score"]))
    for ranked in by_shopper.values():
        ranked.sort()
        assert [k for k, _ in ranked] == list(range(1, len(ranked) + 1))
        assert all(a[1] >= b[1] for a, b in itertools.pairwise(ranked))
    profiles = warehouse.query(
        f"SELECT * FROM `{project}.{dataset}.shopper_spend_profiles` WHERE run_id = @run_id",
        {"run_id": ctx.run_id},
    )
    assert len(profiles) == counts["shopper_spend_profiles"] >= len(by_shopper)
    for p in profiles:
        assert p["baskets"] >= 1 and p["visits_per_week"] > 0
        assert p["value_p25"] <= p["value_p50"] <= p["value_p75"] <= p["value_p90"]
    complements = warehouse.query(
        f"SELECT * FROM `{project}.{dataset}.product_complements` WHERE run_id = @run_id",
        {"run_id": ctx.run_id},
    )
    assert len(complements) == counts["product_complements"] > 0
    for c in complements:
        assert c["support"] >= MIN_PAIR_SUPPORT and c["lift"] > 0
        assert c["product_id"] != c["complement_id"]
    # A shard's compile reads only the complements of its shoppers' top products.
    outputs = BigQueryNightlyOutputs(client, project, dataset)
    for shard in (Shard(0, 2), Shard(1, 2)):
        top = {
            (r["retailer_id"], r["product_id"])
            for r in warehouse.query(
                f"SELECT retailer_id, product_id FROM `{project}.{dataset}.shopper_product_scores`"
                f" WHERE run_id = @run_id AND rank <= 6 AND {shard.predicate()}",
                {"run_id": ctx.run_id},
            )
        }
        expected = sorted(
            (c["retailer_id"], c["product_id"], c["complement_id"])
            for c in complements
            if (c["retailer_id"], c["product_id"]) in top
        )
        read = sorted(
            (retailer, c.product_id, c.complement_id)
            for retailer, c in outputs.complements(ctx.run_id, shard, triggers=6)
        )
        assert read == expected
        assert 0 < len(read) < len(complements)
    # Products new to each shopper: ranked 1..n, never one they bought in the year.
    new = warehouse.query(
        f"SELECT retailer_id, shopper_id, product_id, rank FROM "
        f"`{project}.{dataset}.shopper_new_products` WHERE run_id = @run_id",
        {"run_id": ctx.run_id},
    )
    assert len(new) == counts["shopper_new_products"] > 0
    bought = {
        (r["retailer_id"], r["shopper_id"], r["product_id"])
        for r in warehouse.query(
            f"SELECT DISTINCT retailer_id, shopper_id, product_id FROM "
            f"`{project}.{dataset}.sold_products`"
        )
    }
    assert not [r for r in new if (r["retailer_id"], r["shopper_id"], r["product_id"]) in bought]
    new_ranks: dict[tuple[str, str], list[int]] = {}
    for r in new:
        new_ranks.setdefault((r["retailer_id"], r["shopper_id"]), []).append(r["rank"])
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in new_ranks.values())
    # The new-item comparison is stored: the challenger against popularity, paired.
    assert ("product", "next_basket_new_items", "neighbours - g_topfreq_new") in methods
