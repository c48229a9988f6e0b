"""Training: a LightGBM LambdaRank ranker of candidates, and a next-basket value model.

Both learn from the ``train`` boundaries only (labels before the evaluation boundary), so
the held-out evaluation measures what tonight's model will do on weeks it never saw.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.nightly.context import StepContext
from shared.nightly.features import table_ref
from shared.nightly.samples import hash_sample
from shared.nightly.shards import BUCKET
from shared.nightly.tables import (
    CANDIDATE_FEATURES,
    NIGHTLY_CANDIDATES,
    NIGHTLY_SHOPPERS,
    SHOPPER_FEATURES,
)
from shared.platform.warehouse import Row

log = logging.getLogger(__name__)

FEATURES = tuple(c.name for c in CANDIDATE_FEATURES)
VALUE_FEATURES = tuple(c.name for c in SHOPPER_FEATURES)
RANKER_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "lambdarank_truncation_level": 20,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "num_threads": 2,
    "seed": 8451,
    "verbose": -1,
}
RANKER_ROUNDS = 250
VALUE_PARAMS: dict[str, Any] = {
    "objective": "huber",
    "alpha": 20.0,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "num_threads": 2,
    "seed": 8451,
    "verbose": -1,
}
VALUE_ROUNDS = 200


def artifact(run_id: str, name: str) -> str:
    return f"nightly/{run_id}/{name}"


@dataclass(frozen=True)
class Candidates:
    """Candidate rows of one role, grouped by shopper (consecutive rows)."""

    keys: list[tuple[str, str, str]]  # boundary, retailer_id, shopper_id per row
    products: list[str]
    brands: list[str | None]
    categories: list[str | None]
    x: Any  # float matrix, FEATURES columns
    label_next: Any
    label_28d: Any

    def groups(self) -> list[tuple[int, int]]:
        """(start, stop) of each shopper's rows."""
        bounds: list[tuple[int, int]] = []
        start = 0
        for i in range(1, len(self.keys) + 1):
            if i == len(self.keys) or self.keys[i] != self.keys[start]:
                bounds.append((start, i))
                start = i
        return bounds


def _matrix(rows: Sequence[Row], names: Sequence[str]) -> Any:
    return np.array(
        [[np.nan if r[n] is None else float(r[n]) for n in names] for r in rows], dtype=float
    )


PACK = 10  # features per packed string


def _as_text(column: str) -> str:
    return f"COALESCE(CAST(ROUND({column}, 6) AS STRING), 'nan')"


def load_candidates(ctx: StepContext, role: str, where: str | None = None) -> Candidates:
    """One role's candidates, fetched as one packed row per shopper.

    A row per candidate costs a JSON cell per feature on the way out of the warehouse;
    packing each shopper's candidates into a few strings moves the same numbers ~10x
    faster. Each packed item starts with its product id, so the strings need no common
    order. (bqemulator refuses long ``||`` chains: ``PACK`` features per string.)
    ``where``: a further SQL predicate (one shard's shoppers).
    """
    return unpack_candidates(
        ctx.warehouse.query(candidates_sql(ctx, role, where), {"run_id": ctx.run_id, "role": role})
    )


def candidates_sql(ctx: StepContext, role: str, where: str | None = None) -> str:
    """The packed query of ``load_candidates`` (parameters ``run_id``, ``role``)."""
    packed = ", ".join(
        "STRING_AGG(product_id || ' ' || "
        + " || ' ' || ".join(_as_text(f) for f in FEATURES[i : i + PACK])
        + f", ';') AS x{i // PACK}"
        for i in range(0, len(FEATURES), PACK)
    )
    return (
        f"SELECT CAST(boundary AS STRING) AS boundary, retailer_id, shopper_id, "
        f"MAX({BUCKET}) AS {BUCKET}, {packed}, "
        "STRING_AGG(product_id || '|' || COALESCE(CAST(label_next AS STRING), '0') || '|'"
        " || COALESCE(CAST(label_28d AS STRING), '0') || '|' || COALESCE(brand, '')"
        " || '|' || COALESCE(category, ''), '^') AS y "
        f"FROM {table_ref(ctx, NIGHTLY_CANDIDATES.name)} "
        "WHERE run_id = @run_id AND role = @role "
        + (f"AND ({where}) " if where else "")
        + "GROUP BY boundary, retailer_id, shopper_id "
        "ORDER BY boundary, retailer_id, shopper_id"
    )


def unpack_candidates(rows: Sequence[Row]) -> Candidates:
    """Packed shopper rows (see ``load_candidates``) back to one row per candidate."""
    keys: list[tuple[str, str, str]] = []
    products: list[str] = []
    brands: list[str | None] = []
    categories: list[str | None] = []
    blocks: list[Any] = []
    label_next: list[float] = []
    label_28d: list[float] = []
    width = len(FEATURES)
    for row in rows:
        parts = [
            sorted(item.split(" ", 1) for item in row[f"x{j}"].split(";"))
            for j in range((width + PACK - 1) // PACK)
        ]
        items = [
            (chunks[0][0], " ".join(values for _, values in chunks))
            for chunks in zip(*parts, strict=True)
        ]
        if any(len({product for product, _ in chunks}) != 1 for chunks in zip(*parts, strict=True)):
            raise ValueError("packed candidate strings disagree on the products")
        about = {}
        for line in row["y"].split("^"):
            product, next_, in_28d, brand, category = line.split("|", 4)
            about[product] = (float(next_), float(in_28d), brand or None, category or None)
        text = " ".join(values for _, values in items)
        blocks.append(np.array(text.split(" "), dtype=float).reshape(len(items), width))
        key = (row["boundary"], row["retailer_id"], row["shopper_id"])
        for product, _ in items:
            next_, in_28d, brand, category = about[product]
            keys.append(key)
            products.append(product)
            brands.append(brand)
            categories.append(category)
            label_next.append(next_)
            label_28d.append(in_28d)
    return Candidates(
        keys=keys,
        products=products,
        brands=brands,
        categories=categories,
        x=np.vstack(blocks) if blocks else np.empty((0, width)),
        label_next=np.array(label_next),
        label_28d=np.array(label_28d),
    )


def load_shoppers(ctx: StepContext, role: str, where: str | None = None) -> list[Row]:
    return ctx.warehouse.query(
        f"SELECT retailer_id, shopper_id, {', '.join(VALUE_FEATURES)}, next_value "
        f"FROM {table_ref(ctx, NIGHTLY_SHOPPERS.name)} "
        "WHERE run_id = @run_id AND role = @role "
        + (f"AND ({where}) " if where else "")
        + "ORDER BY retailer_id, shopper_id, boundary",
        {"run_id": ctx.run_id, "role": role},
    )


SAMPLE_SALT = "cartwise-train-sample"  # the sample's seed: the same shoppers every night


def training_sample(ctx: StepContext) -> tuple[str | None, dict[str, object]]:
    """The SQL predicate of the training sample (None: every shopper), and what it is:
    about ``ctx.train_shoppers`` of the train boundaries' shoppers (``samples.py``)."""
    return hash_sample(ctx, "train", ctx.train_shoppers, SAMPLE_SALT)


def value_matrix(rows: Sequence[Row]) -> Any:
    return _matrix(rows, VALUE_FEATURES)


def relevance(candidates: Candidates) -> Any:
    """Graded relevance: 3 in the next basket (and so in the 28 days), 1 only later, 0."""
    return candidates.label_next * 2 + candidates.label_28d


def fit_ranker(candidates: Candidates) -> Any:
    """LambdaRank on graded relevance, over the shoppers with a relevant candidate."""
    import lightgbm as lgb

    grades = relevance(candidates)
    keep: list[int] = []
    sizes: list[int] = []
    for start, stop in candidates.groups():
        if grades[start:stop].any():
            keep.extend(range(start, stop))
            sizes.append(stop - start)
    if not sizes:
        raise ValueError("no training shopper with a positive candidate")
    rows = np.asarray(keep)
    data = lgb.Dataset(
        candidates.x[rows],
        label=grades[rows],
        group=sizes,
        feature_name=list(FEATURES),
        free_raw_data=True,
    )
    return lgb.train(RANKER_PARAMS, data, num_boost_round=RANKER_ROUNDS)


def fit_value_model(rows: Sequence[Row]) -> Any:
    import lightgbm as lgb

    labelled = [r for r in rows if r["next_value"] is not None]
    if not labelled:
        raise ValueError("no training shopper with a next basket")
    data = lgb.Dataset(
        value_matrix(labelled),
        label=np.array([float(r["next_value"]) for r in labelled]),
        feature_name=list(VALUE_FEATURES),
    )
    return lgb.train(VALUE_PARAMS, data, num_boost_round=VALUE_ROUNDS)


def load_model(ctx: StepContext, name: str) -> Any:
    import lightgbm as lgb

    return lgb.Booster(model_str=ctx.artifacts.get(artifact(ctx.run_id, name)).decode())


def train(ctx: StepContext) -> dict[str, object]:
    """The train step: fits both models on the train boundaries, stores them as artifacts."""
    started = time.monotonic()
    sample, sampled = training_sample(ctx)
    candidates = load_candidates(ctx, "train", sample)
    loaded = time.monotonic()
    ranker = fit_ranker(candidates)
    ctx.artifacts.put(artifact(ctx.run_id, "ranker.txt"), ranker.model_to_string().encode())
    shoppers = load_shoppers(ctx, "train", sample)
    value_model = fit_value_model(shoppers)
    ctx.artifacts.put(
        artifact(ctx.run_id, "basket_value.txt"), value_model.model_to_string().encode()
    )
    importance = dict(
        zip(FEATURES, (float(v) for v in ranker.feature_importance("gain")), strict=True)
    )
    top = sorted(importance.items(), key=lambda kv: -kv[1])[:8]
    summary: dict[str, object] = {
        "candidates": len(candidates.keys),
        "shoppers": len(candidates.groups()),
        "training_sample": sampled,
        "positives": int(candidates.label_next.sum()),
        "ranker_rounds": ranker.current_iteration(),
        "value_training_shoppers": sum(r["next_value"] is not None for r in shoppers),
        "top_features_by_gain": [name for name, _ in top],
        "load_seconds": round(loaded - started, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    ctx.artifacts.put(artifact(ctx.run_id, "training.json"), json.dumps(summary).encode())
    log.info("models trained", extra={"summary": summary})
    return summary
