"""The nightly steps, by the names the workflow calls them."""

from __future__ import annotations

from collections.abc import Callable

from shared.nightly.context import StepContext
from shared.nightly.evaluation import evaluate
from shared.nightly.features import build
from shared.nightly.scoring import score
from shared.nightly.training import train

STEPS: dict[str, Callable[[StepContext], dict[str, object]]] = {
    "features": build,
    "train": train,
    "evaluate": evaluate,
    "score": score,
}
