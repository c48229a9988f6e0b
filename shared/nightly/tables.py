"""The tables the nightly steps write, beside the read models (one dataset).

Every row carries the ``run_id`` of the run that wrote it: a step re-run for the same run
deletes its rows, then writes them again. Work tables (``nightly_*``) feed the next steps;
the other five are the run's outputs (see ``shared/nightly/context.py``).
"""

from __future__ import annotations

from shared.freezer.read_models import DATASET
from shared.nightly.shards import BUCKET, BUCKETS
from shared.platform.resource_model import BigQueryTable, Column

RUN_ID = Column(name="run_id", type="STRING", mode="REQUIRED", description="The nightly run")
RETAILER = Column(name="retailer_id", type="STRING", mode="REQUIRED")
SHOPPER = Column(name="shopper_id", type="STRING", mode="REQUIRED")
# NULLABLE: added to tables saved before it (rows of earlier runs hold none).
SHARD_BUCKET = Column(
    name=BUCKET,
    type="INT64",
    description=f"The shopper's shard bucket, 0..{BUCKETS - 1} (shared/nightly/shards.py)",
)
BOUNDARY = Column(
    name="boundary",
    type="TIMESTAMP",
    mode="REQUIRED",
    description="History is what happened before this moment; labels what happened after",
)
ROLE = Column(
    name="role",
    type="STRING",
    mode="REQUIRED",
    description="train, evaluate (held-out weeks) or score (tonight's history, no label)",
)


def _float(name: str, description: str = "") -> Column:
    return Column(name=name, type="FLOAT64", description=description)


# Candidate features, in the order the ranker reads them (shopper x product at a boundary).
CANDIDATE_FEATURES: tuple[Column, ...] = (
    _float("in_history", "1 if the shopper bought the product before the boundary"),
    _float("p_baskets", "Shopper's baskets with the product (365 days)"),
    _float("p_share", "Share of the shopper's baskets with the product"),
    _float("p_baskets_28d", "Shopper's baskets with the product, last 28 days"),
    _float("p_last5", "Share of the shopper's last five baskets with the product"),
    _float("p_baskets_since_last", "Shopper's baskets since they last bought it"),
    _float("p_decay_14", "Sum over those baskets of exp(-age/14 days)"),
    _float("p_decay_56", "Sum over those baskets of exp(-age/56 days)"),
    _float("p_days_since_last", "Days since the shopper last bought it"),
    _float("p_interval", "Mean days between the shopper's purchases of it"),
    _float("p_due", "Days since last over mean interval (due for a re-buy near 1)"),
    _float("p_quantity", "Units bought"),
    _float("p_spend", "Amount spent on it"),
    _float("c_share", "Share of the shopper's baskets with the product's category"),
    _float("c_days_since_last", "Days since the shopper last bought the category"),
    _float("b_share", "Share of the shopper's baskets with the product's manufacturer"),
    _float("g_pop", "Share of the retailer's baskets with the product (365 days)"),
    _float("g_pop_28d", "Share of the retailer's baskets with the product, last 28 days"),
    _float("g_repeat", "Share of the product's buyers who bought it again"),
    _float("s_baskets", "Shopper's baskets (365 days)"),
    _float("s_days_since_last", "Days since the shopper's last basket"),
    _float("s_interval", "Mean days between the shopper's baskets"),
    _float("s_products", "Distinct products the shopper bought"),
)

NIGHTLY_CANDIDATES = BigQueryTable(
    dataset=DATASET,
    name="nightly_candidates",
    description="Ranker candidates (history and popular products) with features and labels",
    columns=(
        RUN_ID,
        BOUNDARY,
        ROLE,
        RETAILER,
        SHOPPER,
        SHARD_BUCKET,
        Column(name="product_id", type="STRING", mode="REQUIRED"),
        Column(name="brand", type="STRING"),
        Column(name="category", type="STRING"),
        *CANDIDATE_FEATURES,
        Column(
            name="label_next",
            type="INT64",
            description="1 if in the shopper's first basket after the boundary (null: none yet)",
        ),
        Column(
            name="label_28d",
            type="INT64",
            description="1 if bought in the 28 days after the boundary (null: no basket)",
        ),
    ),
    clustering=("run_id", "role", BUCKET),
)

# Shopper-level features (spend distribution, cadence) and the next basket's value.
SHOPPER_FEATURES: tuple[Column, ...] = (
    _float("baskets", "Baskets in the 365 days before the boundary"),
    _float("value_mean"),
    _float("value_std"),
    _float("value_p25"),
    _float("value_p50"),
    _float("value_p75"),
    _float("value_p90"),
    _float("value_last", "Value of the last basket"),
    _float("value_mean_last5", "Mean value of the last five baskets"),
    _float("days_since_last"),
    _float("visits_per_week", "Baskets per week since the first basket (365 days)"),
)

NIGHTLY_SHOPPERS = BigQueryTable(
    dataset=DATASET,
    name="nightly_shoppers",
    description="Per shopper at a boundary: spend distribution, cadence, next basket's value",
    columns=(
        RUN_ID,
        BOUNDARY,
        ROLE,
        RETAILER,
        SHOPPER,
        SHARD_BUCKET,
        *SHOPPER_FEATURES,
        _float("next_value", "Value of the first basket after the boundary (null: none yet)"),
    ),
    clustering=("run_id", "role", BUCKET),
)

# The score step packs, once per run, each scored shopper's 365-day history (one row a
# shopper, ``product:baskets:recent_baskets`` joined by ``;``) and the retailers' neighbour
# pools; a shard task reads its bucket range of the first and the whole (small) second,
# so no task scans ``sold_products``.
PACKED_ITEMS = Column(
    name="items",
    type="STRING",
    mode="REQUIRED",
    description="product:baskets:recent_baskets, joined by ';' (365 days)",
)
NIGHTLY_HISTORIES = BigQueryTable(
    dataset=DATASET,
    name="nightly_histories",
    description="Each scored shopper's packed 365-day history (the shards' new products)",
    columns=(RUN_ID, RETAILER, SHOPPER, SHARD_BUCKET, PACKED_ITEMS),
    clustering=("run_id", BUCKET),
)
NIGHTLY_NEIGHBOUR_POOLS = BigQueryTable(
    dataset=DATASET,
    name="nightly_neighbour_pools",
    description="Per retailer, the packed histories of the neighbour pool (a stable sample)",
    columns=(RUN_ID, RETAILER, SHOPPER, PACKED_ITEMS),
    clustering=("run_id", "retailer_id"),
)

SHOPPER_PRODUCT_SCORES = BigQueryTable(
    dataset=DATASET,
    name="shopper_product_scores",
    description="Each shopper's top products for their next basket (the ranker's output)",
    columns=(
        RUN_ID,
        RETAILER,
        SHOPPER,
        SHARD_BUCKET,
        Column(name="product_id", type="STRING", mode="REQUIRED"),
        Column(name="rank", type="INT64", mode="REQUIRED", description="1 = best"),
        Column(name="score", type="FLOAT64", mode="REQUIRED"),
    ),
    clustering=("run_id", BUCKET, "retailer_id", "shopper_id"),
)

SHOPPER_NEW_PRODUCTS = BigQueryTable(
    dataset=DATASET,
    name="shopper_new_products",
    description="Each shopper's recommended products they never bought (new items)",
    columns=(
        RUN_ID,
        RETAILER,
        SHOPPER,
        SHARD_BUCKET,
        Column(name="product_id", type="STRING", mode="REQUIRED"),
        Column(name="rank", type="INT64", mode="REQUIRED", description="1 = best"),
    ),
    clustering=("run_id", BUCKET, "retailer_id", "shopper_id"),
)

PRODUCT_COMPLEMENTS = BigQueryTable(
    dataset=DATASET,
    name="product_complements",
    description="Co-purchase complementarity (pasta -> sauce): lift and support",
    columns=(
        RUN_ID,
        RETAILER,
        Column(name="product_id", type="STRING", mode="REQUIRED"),
        Column(name="complement_id", type="STRING", mode="REQUIRED"),
        Column(
            name="lift",
            type="FLOAT64",
            mode="REQUIRED",
            description="P(both) / (P(product) P(complement)) over the retailer's baskets",
        ),
        Column(
            name="support",
            type="INT64",
            mode="REQUIRED",
            description="Baskets with both",
        ),
    ),
    clustering=("run_id", "retailer_id", "product_id"),
)

SHOPPER_SPEND_PROFILES = BigQueryTable(
    dataset=DATASET,
    name="shopper_spend_profiles",
    description="Each shopper's basket value distribution and cadence (tension-cart thresholds)",
    columns=(
        RUN_ID,
        RETAILER,
        SHOPPER,
        SHARD_BUCKET,
        Column(name="baskets", type="INT64", mode="REQUIRED"),
        Column(name="value_p25", type="FLOAT64", mode="REQUIRED"),
        Column(name="value_p50", type="FLOAT64", mode="REQUIRED"),
        Column(name="value_p75", type="FLOAT64", mode="REQUIRED"),
        Column(name="value_p90", type="FLOAT64", mode="REQUIRED"),
        Column(name="visits_per_week", type="FLOAT64", mode="REQUIRED"),
    ),
    clustering=("run_id", BUCKET, "retailer_id", "shopper_id"),
)

MODEL_EVALUATIONS = BigQueryTable(
    dataset=DATASET,
    name="model_evaluations",
    description="The evaluation table of each run: metric by level, target and method",
    columns=(
        RUN_ID,
        Column(name="level", type="STRING", mode="REQUIRED", description="product, ..."),
        Column(name="target", type="STRING", mode="REQUIRED", description="next_basket, ..."),
        Column(name="method", type="STRING", mode="REQUIRED", description="ranker, baselines"),
        Column(name="metric", type="STRING", mode="REQUIRED", description="recall@10, ..."),
        Column(name="value", type="FLOAT64", mode="REQUIRED"),
        Column(name="ci_low", type="FLOAT64", description="95% bootstrap interval, if any"),
        Column(name="ci_high", type="FLOAT64"),
        Column(name="shoppers", type="INT64", mode="REQUIRED", description="Shoppers evaluated"),
    ),
    clustering=("run_id",),
)

# The offer policy (docs/MODEL.md, "The offer policy"): the personalized promotions'
# targets, and each scored shopper's behaviour towards each live one (the uplift model's
# features, computed as of the run's end of history by the shard that scores them).
OFFER_FEATURES: tuple[Column, ...] = (
    _float("targeted_weeks_share", "Share of the last 8 weeks with a targeted purchase"),
    _float("targeted_weekly_sales", "Targeted sales per week over the last 8 weeks"),
    _float("orders_per_week", "Orders per week over the last 8 weeks"),
    _float("basket_mean", "Mean order value over the last 8 weeks"),
    _float("promotion_share", "Share of the spend bought with a discount, last 8 weeks"),
)
CAMPAIGN = Column(name="campaign_id", type="STRING", mode="REQUIRED")
NIGHTLY_OFFER_TARGETS = BigQueryTable(
    dataset=DATASET,
    name="nightly_offer_targets",
    description="The personalized promotions' targeted products, brands and categories",
    columns=(
        RUN_ID,
        CAMPAIGN,
        RETAILER,
        Column(name="product_id", type="STRING"),
        Column(name="brand", type="STRING"),
        Column(name="category", type="STRING"),
    ),
)
SHOPPER_OFFER_FEATURES = BigQueryTable(
    dataset=DATASET,
    name="shopper_offer_features",
    description="Each scored shopper's behaviour towards each live personalized promotion",
    columns=(RUN_ID, RETAILER, SHOPPER, SHARD_BUCKET, CAMPAIGN, *OFFER_FEATURES),
    clustering=("run_id", BUCKET, "retailer_id", "shopper_id"),
)

# Work tables: rows the next steps of the same run read, and nothing after it; the run's
# rows are deleted when the workflow finishes it (``service.finish_run``), whatever the
# outcome, so that they do not pile up night after night.
WORK_TABLES: tuple[BigQueryTable, ...] = (
    NIGHTLY_CANDIDATES,
    NIGHTLY_SHOPPERS,
    NIGHTLY_HISTORIES,
    NIGHTLY_NEIGHBOUR_POOLS,
)
# The run's outputs that its trees are compiled from, and nothing else reads: kept while
# the run is the live one, deleted when the next run is published (``service.publish``),
# or when the run ends unpublished. The evaluations and the offer targets stay (history).
RETIRED_OUTPUTS: tuple[BigQueryTable, ...] = (
    SHOPPER_PRODUCT_SCORES,
    SHOPPER_NEW_PRODUCTS,
    PRODUCT_COMPLEMENTS,
    SHOPPER_SPEND_PROFILES,
    SHOPPER_OFFER_FEATURES,
)

NIGHTLY_TABLES: tuple[BigQueryTable, ...] = (
    NIGHTLY_CANDIDATES,
    NIGHTLY_SHOPPERS,
    NIGHTLY_HISTORIES,
    NIGHTLY_NEIGHBOUR_POOLS,
    SHOPPER_PRODUCT_SCORES,
    SHOPPER_NEW_PRODUCTS,
    PRODUCT_COMPLEMENTS,
    SHOPPER_SPEND_PROFILES,
    MODEL_EVALUATIONS,
    NIGHTLY_OFFER_TARGETS,
    SHOPPER_OFFER_FEATURES,
)
