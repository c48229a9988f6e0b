"""Hash shards of shoppers: the unit of work of one task of the ``nightly_shards`` job.

A Cloud Run job runs ``count`` tasks; task ``index`` (``CLOUD_RUN_TASK_INDEX`` of
``CLOUD_RUN_TASK_COUNT``) takes the shoppers whose *shard bucket* falls in its range.

A shopper's bucket is ``MOD(FARM_FINGERPRINT(shopper_id), BUCKETS)`` (``bucket_sql``),
computed once per shopper and run by the ``features`` step and written as the INT64
column ``shard_bucket`` of every per-shopper table of the run (the tables are clustered
on it). A shard is a contiguous range of buckets, so a task's predicate is an integer
range: BigQuery prunes a clustered scan to its blocks (a task reads ~1/N of each table,
not all of it to keep 1/N), and no query of a task hashes ids row by row (bqemulator's
``FARM_FINGERPRINT`` per row grew faster than the rows: docs/NIGHTLY.md). A shopper id
in two retailers has one bucket; every shopper lands in exactly one shard; no shopper id
list travels between tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

BUCKETS = 1024  # shard buckets; a job runs at most this many tasks
BUCKET = "shard_bucket"  # the column that holds a shopper's bucket


def bucket_sql(column: str = "shopper_id") -> str:
    """SQL of a shopper's bucket, 0 .. BUCKETS - 1 (FARM_FINGERPRINT may be negative)."""
    return f"MOD(MOD(FARM_FINGERPRINT({column}), {BUCKETS}) + {BUCKETS}, {BUCKETS})"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= BUCKETS or not 0 <= self.index < self.count:
            raise ValueError(
                f"shard {self.index} of {self.count}: need 0 <= index < count <= {BUCKETS}"
            )

    @property
    def buckets(self) -> range:
        """The shard's buckets: ``[ceil(i B / n), ceil((i + 1) B / n))``, the ranges of
        the ``count`` shards tile 0 .. BUCKETS - 1 with sizes differing by at most one."""
        return range(
            -(-self.index * BUCKETS // self.count), -(-(self.index + 1) * BUCKETS // self.count)
        )

    def predicate(self, column: str = BUCKET) -> str:
        """SQL true for the rows of this shard's shoppers (on their ``shard_bucket``)."""
        first, last = self.buckets[0], self.buckets[-1]
        return f"{column} BETWEEN {first} AND {last}"

    @property
    def name(self) -> str:
        return f"{self.index}-of-{self.count}"


WHOLE = Shard(0, 1)


def fill_buckets_sql(table: str) -> str:
    """An UPDATE giving the rows of run ``@run_id`` written without a bucket (outputs
    seeded by hand, in tests and benches, where no ``features`` step ran) theirs."""
    return (
        f"UPDATE {table} SET {BUCKET} = {bucket_sql()} WHERE run_id = @run_id AND {BUCKET} IS NULL"
    )
