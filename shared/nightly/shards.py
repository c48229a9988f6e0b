"""Hash shards of shoppers: the unit of work of one task of the ``nightly_shards`` job.

A Cloud Run job runs ``count`` tasks; task ``index`` (``CLOUD_RUN_TASK_INDEX`` of
``CLOUD_RUN_TASK_COUNT``) takes the shoppers whose id hashes to it. The hash is BigQuery's
``FARM_FINGERPRINT`` (bqemulator computes the same values), so every query and every
delete of a shard is one predicate in SQL and no shopper id list travels between tasks.
A shopper id in two retailers lands in one shard; every shopper in exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: need 0 <= index < count")

    def predicate(self, column: str = "shopper_id") -> str:
        """SQL true for the shoppers of this shard (FARM_FINGERPRINT may be negative)."""
        n = int(self.count)
        return f"MOD(MOD(FARM_FINGERPRINT({column}), {n}) + {n}, {n}) = {int(self.index)}"

    @property
    def name(self) -> str:
        return f"{self.index}-of-{self.count}"


WHOLE = Shard(0, 1)
