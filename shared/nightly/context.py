"""What every nightly step receives, and the ports it works through.

A step is a function ``(StepContext) -> dict`` (its JSON summary, returned to the
workflow). Steps are idempotent: a step re-run for the same ``run_id`` replaces what it
wrote for that run. Nothing here imports ``google.*``: the adapters live in
``shared/adapters/`` and are injected by the function that serves the steps.

Tables a step writes to carry ``run_id``; what the next steps read:

- ``shopper_product_scores``: run_id, retailer_id, shopper_id, product_id, rank (1 = best),
  score -- each shopper's top products for their next basket (the ranker's output).
- ``shopper_new_products``: run_id, retailer_id, shopper_id, product_id, rank -- products
  the shopper never bought, from the shoppers who shop like them (``neighbours.py``).
- ``product_complements``: run_id, retailer_id, product_id, complement_id, lift, support --
  co-purchase complementarity (pasta -> sauce).
- ``shopper_spend_profiles``: run_id, retailer_id, shopper_id, baskets, value_p25,
  value_p50, value_p75, value_p90, visits_per_week -- from each shopper's spend
  distribution (tension-cart thresholds).
- ``model_evaluations``: run_id, level, target, method, metric, value, ci_low, ci_high,
  shoppers -- the evaluation table, with the gate decision in the evaluate step's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from shared.platform.warehouse import Warehouse


class ArtifactStore(Protocol):
    """Model files: a Cloud Storage prefix in the cloud, a directory locally."""

    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str) -> bytes: ...


@dataclass(frozen=True)
class StepContext:
    run_id: str
    cutoff: date  # the last day of history the run learns from
    project: str
    dataset: str  # the read models' dataset; features and outputs live beside them
    warehouse: Warehouse
    artifacts: ArtifactStore
    # The gate's margin: the ranker must beat P-TopFreq by at least this relative lift of
    # next-basket recall@10 (0: any surely positive difference, docs/MODEL.md).
    gate_min_lift: float = 0.0
    # Train on about this many of the train boundaries' shoppers (None: all of them): a
    # seeded hash sample, the same shoppers every night (docs/MODEL.md, "Training sample").
    train_shoppers: int | None = None
    # Evaluate about this many of the evaluate boundary's shoppers (None: all of them): a
    # seeded hash sample, its own salt (docs/MODEL.md, "Evaluation sample").
    evaluate_shoppers: int | None = None
    # A shard task holds this many shoppers at once (memory bounded by it, not by the
    # population); the new-item neighbours come from a hash sample of this many shoppers
    # per retailer (docs/NIGHTLY.md, "Bounded memory").
    batch_shoppers: int = 2_000
    neighbour_pool: int = 20_000
