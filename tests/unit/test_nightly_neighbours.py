"""New-item recommendations from neighbours: hand-made histories, expectations by hand."""

from __future__ import annotations

import pytest

from shared.nightly.neighbours import (
    RetailerHistory,
    parse_packed,
    prepare_pool,
    recommend,
    recommend_from_pool,
)


def _history() -> dict[str, RetailerHistory]:
    # Pasta lovers a1, a2, a3 buy pasta and sauce; a3 also buys parmesan.
    # Pet owners p1, p2 buy kibble and litter; p2 also buys treats.
    # Bananas sell most in the last weeks (the retailer's recent best seller).
    return parse_packed(
        [
            {"retailer_id": "r", "shopper_id": "a1", "items": "pasta:5:1;sauce:4:1"},
            {"retailer_id": "r", "shopper_id": "a2", "items": "pasta:3:1;sauce:2:0;banana:1:1"},
            {"retailer_id": "r", "shopper_id": "a3", "items": "pasta:2:1;sauce:2:1;parmesan:2:1"},
            {"retailer_id": "r", "shopper_id": "p1", "items": "kibble:6:2;litter:3:1;banana:3:3"},
            {"retailer_id": "r", "shopper_id": "p2", "items": "kibble:2:1;litter:1:1;treats:2:1"},
            {"retailer_id": "r", "shopper_id": "p3", "items": "banana:4:4"},
            {"retailer_id": "other", "shopper_id": "x", "items": "pasta:9:9;caviar:9:9"},
        ]
    )


def test_parse_packed_keeps_counts_per_retailer() -> None:
    histories = _history()
    assert sorted(histories) == ["other", "r"]
    r = histories["r"]
    assert r.shoppers == ["a1", "a2", "a3", "p1", "p2", "p3"]
    pasta = r.products.index("pasta")
    pairs = [
        (r.shoppers[row], r.baskets[i], r.recent_baskets[i])
        for i, (row, col) in enumerate(zip(r.rows, r.columns, strict=True))
        if col == pasta
    ]
    assert pairs == [("a1", 5, 1), ("a2", 3, 1), ("a3", 2, 1)]


@pytest.mark.parametrize("similarity", ["binary", "log_idf"])
def test_neighbours_recommend_what_similar_shoppers_buy_and_never_what_was_bought(
    similarity: str,
) -> None:
    out = recommend(
        _history(), [("r", "a1"), ("r", "p1")], k=3, neighbours=2, similarity=similarity
    )
    # a1's two nearest shoppers are a2 (pasta, sauce, banana) and a3 (pasta, sauce,
    # parmesan), both at cosine 2/sqrt(6): a tie broken by recent popularity (8 vs 1).
    assert out["neighbours_only"][("r", "a1")][:2] == ["banana", "parmesan"]
    for method in ("neighbours", "neighbours_only", "g_topfreq_new_56d"):
        for key, own in ((("r", "a1"), {"pasta", "sauce"}), (("r", "p1"), {"kibble", "litter"})):
            assert not own & set(out[method][key]), (method, key)
    # p1's neighbours are p2 and p3: treats (p2) and nothing of the pasta lovers first.
    assert out["neighbours_only"][("r", "p1")][0] == "treats"
    assert out["neighbours"][("r", "p1")][0] == "treats"
    # Popularity alone: bananas (7 recent baskets) first for a1, whoever a1 resembles.
    assert out["g_topfreq_new_56d"][("r", "a1")][0] == "banana"


def test_the_blend_prefers_a_neighbours_product_over_a_more_popular_stranger() -> None:
    out = recommend(_history(), [("r", "a1")], k=5, neighbours=2)
    ranked = out["neighbours"][("r", "a1")]
    # parmesan (3 recent baskets, a neighbour's) before kibble (3 recent, no neighbour's).
    assert ranked.index("parmesan") < ranked.index("kibble")


def test_neighbours_never_cross_retailers() -> None:
    out = recommend(_history(), [("r", "a1"), ("other", "x")], k=10, neighbours=5)
    assert "caviar" not in out["neighbours"][("r", "a1")]
    # x is alone at its retailer: nothing new to recommend there.
    assert out["neighbours"][("other", "x")] == []
    # An unknown shopper (no history) gets no row, not a popular guess labelled personal.
    assert ("r", "ghost") not in recommend(_history(), [("r", "ghost")], k=3)["neighbours"]


def test_log_idf_similarity_weighs_rare_shared_products_more() -> None:
    # q shares the rare "saffron" with s; c shares the common "milk" and "bread" with s.
    histories = parse_packed(
        [
            {"retailer_id": "r", "shopper_id": "s", "items": "milk:1:1;bread:1:1;saffron:1:1"},
            {"retailer_id": "r", "shopper_id": "q", "items": "saffron:3:1;paella-pan:1:1"},
            {"retailer_id": "r", "shopper_id": "c", "items": "milk:3:1;bread:3:1;cereal:3:1"},
            {"retailer_id": "r", "shopper_id": "d", "items": "milk:1:1;jam:1:1"},
            {"retailer_id": "r", "shopper_id": "e", "items": "bread:1:1;eggs:1:1"},
        ]
    )
    only = {
        similarity: recommend(histories, [("r", "s")], k=1, neighbours=1, similarity=similarity)[
            "neighbours_only"
        ][("r", "s")]
        for similarity in ("binary", "log_idf")
    }
    # Sets: c (2 of 3 shared, cosine 0.67) is the nearest. Weighted: milk and bread,
    # bought by 3 of 5 shoppers, weigh little (idf log(5/4)) and c's cereal dilutes them;
    # the shared saffron (idf log(5/3)) makes q the nearest (cosine 0.63 against 0.17).
    assert only == {"binary": ["cereal"], "log_idf": ["paella-pan"]}
    with pytest.raises(ValueError, match="unknown similarity"):
        recommend(histories, [("r", "s")], k=1, similarity="jaccard")


def _random_rows(shoppers: int, seed: int) -> list[dict[str, object]]:
    import random

    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for s in range(shoppers):
        products = rng.sample(range(60), rng.randint(1, 12))
        items = ";".join(f"p{p}:{rng.randint(1, 9)}:{rng.randint(0, 3)}" for p in products)
        rows.append({"retailer_id": "r", "shopper_id": f"s{s:03d}", "items": items})
    return rows


@pytest.mark.parametrize("batch", [1, 7, 50, 400])
def test_a_pool_of_every_shopper_ranks_batches_as_the_whole_does(batch: int) -> None:
    rows = _random_rows(300, seed=batch)
    whole = recommend(parse_packed(rows), [("r", str(r["shopper_id"])) for r in rows], 5)
    pool = prepare_pool(parse_packed(rows)["r"])
    assert pool is not None
    batched: dict[tuple[str, str], list[str]] = {}
    for start in range(0, len(rows), batch):
        part = parse_packed(rows[start : start + batch])["r"]
        batched |= {("r", s): p for s, p in recommend_from_pool(pool, part, 5).items()}
    assert batched == whole["neighbours"]


def test_a_smaller_pool_recommends_from_its_shoppers_only() -> None:
    histories = _history()
    pool = prepare_pool(
        parse_packed(
            [
                {"retailer_id": "r", "shopper_id": s, "items": i}
                for s, i in (
                    ("a1", "pasta:5:1;sauce:4:1"),
                    ("a3", "pasta:2:1;sauce:2:1;parmesan:2:1"),
                )
            ]
        )["r"]
    )
    assert pool is not None
    ranked = recommend_from_pool(pool, histories["r"], 3)
    # a2 is not in the pool: its neighbours are a1 and a3, and only a3 bought parmesan.
    assert ranked["a2"] == ["parmesan"]
    assert set(ranked) == set(histories["r"].shoppers)


def _reference_blend(rows: list[dict[str, object]], neighbours: int) -> dict[str, dict[str, float]]:
    """The module docstring's blend, computed plainly over every product with dense numpy:
    each shopper's score of each product they never bought."""
    import numpy as np

    counts: dict[str, dict[str, tuple[int, int]]] = {}
    for row in rows:
        for item in str(row["items"]).split(";"):
            product, in_year, in_recent = item.rsplit(":", 2)
            counts.setdefault(str(row["shopper_id"]), {})[product] = (int(in_year), int(in_recent))
    shoppers = sorted(counts)
    products = sorted({p for items in counts.values() for p in items})
    baskets = np.zeros((len(shoppers), len(products)))
    recent = np.zeros_like(baskets)
    for i, s in enumerate(shoppers):
        for product, (b, r) in counts[s].items():
            baskets[i, products.index(product)], recent[i, products.index(product)] = b, r
    bought = baskets > 0
    popularity = recent.sum(axis=0)
    log_popularity = np.log(popularity / popularity.max() + 1e-4)
    idf = np.maximum(np.log(len(shoppers) / (1.0 + bought.sum(axis=0))), 0.0)
    profiles = np.log1p(baskets) * idf
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    out: dict[str, dict[str, float]] = {}
    for i, s in enumerate(shoppers):
        similarity = profiles @ profiles[i]
        similarity[i] = 0.0
        nearest = np.argsort(-similarity, kind="stable")[:neighbours]
        nb = similarity[nearest] @ bought[nearest]
        nb_norm = nb / nb.max() if nb.max() > 0 else nb
        blend = log_popularity + np.log(nb_norm + 1e-3)
        out[s] = {p: float(blend[j]) for j, p in enumerate(products) if not bought[i, j]}
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_blend_ranks_the_best_of_every_product_never_bought(seed: int) -> None:
    # The fast path scores only the products a shopper's neighbours bought and the most
    # popular others: it must pick the same best k as scoring the whole catalogue.
    rows = _random_rows(120, seed=seed)
    reference = _reference_blend(rows, neighbours=5)
    whole = recommend(parse_packed(rows), [("r", s) for s in reference], 4, neighbours=5)
    pool = prepare_pool(parse_packed(rows)["r"])
    assert pool is not None
    batched = recommend_from_pool(pool, parse_packed(rows)["r"], 4, neighbours=5)
    for shopper, scores in reference.items():
        best = sorted(scores.values(), reverse=True)[:4]
        for ranked in (whole["neighbours"][("r", shopper)], batched[shopper]):
            assert set(ranked) <= set(scores)  # never a product the shopper bought
            assert [scores[p] for p in ranked] == pytest.approx(best, abs=1e-9), shopper
