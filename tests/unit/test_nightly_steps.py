"""The nightly step service over HTTP, with in-memory stores."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.campaigns.model import Campaign
from shared.decisions.compiler import Complement, ScoredProduct, SpendProfile
from shared.decisions.trees import ExperienceTree
from shared.nightly.context import StepContext
from shared.nightly.runs import CurrentRun, RunRecord, RunStatus, StepRecord
from shared.nightly.service import NightlyDependencies, ShopperOutputs, group_outputs
from shared.nightly.shards import BUCKETS, WHOLE, Shard, bucket_sql
from shared.nightly.steps_api import handle
from shared.nightly.tables import RETIRED_OUTPUTS, WORK_TABLES
from shared.platform.errors import StoreUnavailableError
from shared.platform.http import Response
from shared.privacy_marks.marks import OpenGate
from tests.unit.test_tree_compiler import campaign

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


class Runs:
    def __init__(self) -> None:
        self.records: dict[str, RunRecord] = {}
        self.pointer: CurrentRun | None = None
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("firestore: down")

    def begin(self, record: RunRecord) -> None:
        self._check()
        kept = self.records.get(record.run_id)
        self.records[record.run_id] = record.model_copy(
            update={"steps": kept.steps if kept else {}}
        )

    def get(self, run_id: str) -> RunRecord | None:
        self._check()
        return self.records.get(run_id)

    def record_step(self, run_id: str, step: str, record: StepRecord) -> None:
        self._check()
        self.records[run_id].steps[step] = record

    def finish(
        self,
        run_id: str,
        status: RunStatus,
        finished_at: datetime,
        workflow_summary: dict[str, Any] | None,
    ) -> None:
        changes: dict[str, Any] = {"status": status, "finished_at": finished_at}
        if workflow_summary is not None:
            changes["workflow_summary"] = workflow_summary
        self.records[run_id] = self.records[run_id].model_copy(update=changes)

    def set_current(self, current: CurrentRun) -> CurrentRun | None:
        previous, self.pointer = self.pointer, current
        return previous

    def current(self) -> CurrentRun | None:
        return self.pointer


class Outputs:
    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[str, str, ScoredProduct]]] = {}
        self.deleted: list[tuple[str, set[str]]] = []  # (run, tables) deleted

    def delete_run(self, run_id: str, tables: Sequence[str]) -> dict[str, int]:
        self.deleted.append((run_id, set(tables)))
        return dict.fromkeys(tables, 0)

    def scores(self, run_id: str, shard: Shard = WHOLE) -> Iterator[tuple[str, str, ScoredProduct]]:
        assert shard == WHOLE  # sharding is BigQuery's hash: tests/integration
        yield from self.rows.get(run_id, [])

    def complements(
        self, run_id: str, shard: Shard = WHOLE, triggers: int | None = None
    ) -> Iterator[tuple[str, Complement]]:
        yield ("r1", Complement("pasta", "sauce", lift=4.0, support=12))

    def profiles(
        self, run_id: str, shard: Shard = WHOLE
    ) -> Iterator[tuple[str, str, SpendProfile]]:
        yield (
            "r1",
            "s1",
            SpendProfile(20, Decimal(10), Decimal(20), Decimal(30), Decimal(45), 1.5),
        )

    def new_products(
        self, run_id: str, shard: Shard = WHOLE
    ) -> Iterator[tuple[str, str, str, int]]:
        yield ("r1", "s1", "nappies", 2)
        yield ("r1", "s1", "baby-wipes", 1)

    def shopper_batches(
        self, run_id: str, shard: Shard, batch: int
    ) -> Iterator[list[ShopperOutputs]]:
        yield from group_outputs(
            self.scores(run_id, shard),
            self.profiles(run_id, shard),
            self.new_products(run_id, shard),
            batch,
        )


class Trees:
    def __init__(self) -> None:
        self.written: list[ExperienceTree] = []
        self.batches: list[int] = []

    def put_many(self, trees: Iterable[ExperienceTree], batch_size: int) -> int:
        batch = list(trees)
        self.written += batch
        self.batches.append(batch_size)
        return len(batch)


class Campaigns:
    def __init__(self, campaigns: list[Campaign]) -> None:
        self.campaigns = campaigns

    def active(self) -> list[Campaign]:
        return self.campaigns


@pytest.fixture
def deps() -> NightlyDependencies:
    def context(run_id: str, cutoff: date) -> StepContext:
        return StepContext(
            run_id=run_id,
            cutoff=cutoff,
            project="demo-x",
            dataset="cartwise",
            warehouse=None,  # type: ignore[arg-type]
            artifacts=None,  # type: ignore[arg-type]
        )

    outputs = Outputs()
    outputs.rows["run-1"] = [
        ("r1", "s1", ScoredProduct("pasta", 1, 0.9)),
        ("r1", "s1", ScoredProduct("milk", 2, 0.5)),
        ("r1", "s2", ScoredProduct("bread", 1, 0.7)),
    ]
    return NightlyDependencies(
        runs=Runs(),
        outputs=outputs,
        campaigns=Campaigns(
            [campaign("promo", starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=9))]
        ),
        trees=Trees(),
        model_context=context,
        is_transient=lambda exc: isinstance(exc, StoreUnavailableError),
        privacy=OpenGate(),
        write_batch=2,
        clock=lambda: NOW,
    )


WORK = {t.name for t in WORK_TABLES}
OUTPUTS = {t.name for t in RETIRED_OUTPUTS}


def call(deps: NightlyDependencies, method: str, path: str, body: Any = None) -> Response:
    return handle(
        method, path, json.dumps(body).encode() if body is not None else b"", lambda: deps
    )


def test_a_run_begins_with_yesterday_as_cutoff_and_resumes_under_its_id(
    deps: NightlyDependencies,
) -> None:
    begun = call(deps, "POST", "/runs", {})
    assert begun.status == 200
    assert begun.body["cutoff"] == "2026-11-22"
    assert begun.body["run_id"] == "nightly-20261123-023000"
    again = call(deps, "POST", "/runs", {"run_id": "run-1", "cutoff": "2026-10-26"})
    assert (again.status, again.body["cutoff"]) == (200, "2026-10-26")
    assert call(deps, "POST", "/runs", {"run_id": "run-1"}).body["cutoff"] == "2026-10-26"
    other = call(deps, "POST", "/runs", {"run_id": "run-1", "cutoff": "2026-10-27"})
    assert (other.status, other.body["error"]["code"]) == (400, "invalid_request")
    bad = call(deps, "POST", "/runs", {"run_id": "no spaces"})
    assert (bad.status, bad.body["error"]["code"]) == (400, "invalid_request")


def test_compile_then_publish_makes_the_run_current(deps: NightlyDependencies) -> None:
    assert call(deps, "POST", "/steps/publish", {"run_id": "run-1"}).status == 404  # not begun
    call(deps, "POST", "/runs", {"run_id": "run-1", "cutoff": "2026-10-26"})
    early = call(deps, "POST", "/steps/publish", {"run_id": "run-1"})
    assert (early.status, early.body["error"]["code"]) == (409, "not_compiled")
    compiled = call(deps, "POST", "/steps/compile_trees", {"run_id": "run-1", "cutoff": "x"})
    assert compiled.status == 200, compiled.body
    summary = compiled.body
    assert (summary["personal_trees"], summary["default_trees"]) == (2, 1)
    assert summary["trees_written"] == 3 and summary["complement_nodes"] == 1
    assert summary["shoppers_with_basket_tension"] == 1  # s2 has no spend profile
    assert summary["valid_until"] == (NOW + timedelta(days=2)).isoformat()
    trees = {t.shopper_id: t for t in deps.trees.written}  # type: ignore[attr-defined]
    assert trees[None].tree_version.startswith("default-")
    assert trees["s1"].tree_version.startswith("run-1:")
    assert "after:pasta" in trees["s1"].nodes and "promo" in trees["s1"].campaigns
    # Two bulk writes: the personal trees (a shard, here the whole run), the default ones.
    assert deps.trees.batches == [2, 2]  # type: ignore[attr-defined]

    published = call(deps, "POST", "/steps/publish", {"run_id": "run-1"})
    assert published.status == 200 and published.body["previous_run_id"] is None
    current = call(deps, "GET", "/runs/current")
    assert (current.status, current.body["run_id"]) == (200, "run-1")
    assert current.body["trees"]["personal_trees"] == 2
    record = call(deps, "GET", "/runs/run-1").body
    assert record["status"] == "published"
    assert [record["steps"][s]["status"] for s in ("compile_trees", "publish")] == [
        "succeeded",
        "succeeded",
    ]
    finished = call(
        deps, "POST", "/runs/run-1/finish", {"outcome": "published", "summary": {"seconds": 3}}
    )
    assert finished.status == 200 and finished.body["workflow_summary"] == {"seconds": 3}
    # Finished: the run's work rows deleted; its outputs stay while it is the live run.
    assert deps.outputs.deleted == [("run-1", WORK)]  # type: ignore[attr-defined]
    # A published run reported failed after (a later call of the workflow failed): it is
    # live, its outputs stay.
    for _ in range(2):  # and again, as a retry: still the live run
        late = call(deps, "POST", "/runs/run-1/finish", {"outcome": "failed"})
        assert late.status == 200
        assert deps.outputs.deleted[-1] == ("run-1", WORK)  # type: ignore[attr-defined]

    # The next run published: the one it replaces has its outputs deleted.
    deps.outputs.rows["run-2"] = deps.outputs.rows["run-1"]  # type: ignore[attr-defined]
    call(deps, "POST", "/runs", {"run_id": "run-2", "cutoff": "2026-10-27"})
    assert call(deps, "POST", "/steps/compile_trees", {"run_id": "run-2"}).status == 200
    replaced = call(deps, "POST", "/steps/publish", {"run_id": "run-2"})
    assert replaced.status == 200 and replaced.body["previous_run_id"] == "run-1"
    assert deps.outputs.deleted[-1] == ("run-1", OUTPUTS)  # type: ignore[attr-defined]


def test_nothing_to_compile_is_a_refusal_not_a_retry(deps: NightlyDependencies) -> None:
    call(deps, "POST", "/runs", {"run_id": "empty"})
    refused = call(deps, "POST", "/steps/compile_trees", {"run_id": "empty"})
    assert (refused.status, refused.body["error"]["code"]) == (409, "no_scores")
    record = call(deps, "GET", "/runs/empty").body
    assert record["steps"]["compile_trees"]["status"] == "failed"
    assert not deps.trees.written  # type: ignore[attr-defined]
    finished = call(deps, "POST", "/runs/empty/finish", {"outcome": "published"})
    assert finished.status == 409  # never published: cannot finish as such
    assert deps.outputs.deleted == []  # type: ignore[attr-defined]
    failed = call(deps, "POST", "/runs/empty/finish", {"outcome": "failed"})
    assert failed.status == 200
    # Never live: its work rows and its outputs are deleted.
    assert deps.outputs.deleted == [("empty", WORK | OUTPUTS)]  # type: ignore[attr-defined]


def test_a_store_outage_answers_503_for_the_workflow_to_retry(deps: NightlyDependencies) -> None:
    call(deps, "POST", "/runs", {"run_id": "run-1"})
    deps.runs.down = True  # type: ignore[attr-defined]
    answer = call(deps, "POST", "/steps/compile_trees", {"run_id": "run-1"})
    assert (answer.status, answer.body["error"]["code"]) == (503, "unavailable")
    assert answer.headers["Retry-After"] == "5"


def test_model_steps_come_from_the_modelling_module(
    deps: NightlyDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    call(deps, "POST", "/runs", {"run_id": "run-1", "cutoff": "2026-10-26"})
    monkeypatch.setitem(sys.modules, "shared.nightly.steps", None)  # absent from the build
    absent = call(deps, "POST", "/steps/features", {"run_id": "run-1"})
    assert (absent.status, absent.body["error"]["code"]) == (501, "step_unavailable")

    seen: list[tuple[str, date]] = []

    def features(ctx: StepContext) -> dict[str, Any]:
        seen.append((ctx.run_id, ctx.cutoff))
        return {"rows": 12, "at": NOW, "share": Decimal("0.5")}

    def train(ctx: StepContext) -> dict[str, Any]:
        raise RuntimeError("diverged")

    def evaluate(ctx: StepContext) -> dict[str, Any]:
        raise StoreUnavailableError("bigquery: down")

    module = types.ModuleType("shared.nightly.steps")
    module.STEPS = {"features": features, "train": train, "evaluate": evaluate}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shared.nightly.steps", module)
    done = call(deps, "POST", "/steps/features", {"run_id": "run-1"})
    assert done.status == 200
    assert done.body | {"seconds": 0} == {
        "rows": 12,
        "at": NOW.isoformat(),
        "share": 0.5,
        "step": "features",
        "run_id": "run-1",
        "seconds": 0,
    }
    assert seen == [("run-1", date(2026, 10, 26))]
    failed = call(deps, "POST", "/steps/train", {"run_id": "run-1"})
    assert (failed.status, failed.body["error"]["code"]) == (500, "step_failed")
    assert "diverged" in failed.body["error"]["message"]
    assert call(deps, "POST", "/steps/evaluate", {"run_id": "run-1"}).status == 503
    missing = call(deps, "POST", "/steps/score", {"run_id": "run-1"})
    assert missing.status == 501
    steps = call(deps, "GET", "/runs/run-1").body["steps"]
    assert {k: v["status"] for k, v in steps.items()} == {
        "features": "succeeded",
        "train": "failed",
        "evaluate": "failed",
        "score": "failed",
    }
    assert "diverged" in steps["train"]["error"]


def test_routes_and_refusals(deps: NightlyDependencies) -> None:
    assert call(deps, "POST", "/steps/nope", {"run_id": "r"}).body["error"]["code"] == (
        "unknown_step"
    )
    assert call(deps, "POST", "/steps/publish", {}).status == 400
    assert call(deps, "GET", "/steps/publish").status == 405
    assert call(deps, "GET", "/runs/current").status == 404  # nothing published yet
    assert call(deps, "GET", "/runs/unknown").body["error"]["code"] == "unknown_run"
    # More tasks than shard buckets: refused when the run begins, not in every task.
    refused = call(deps, "POST", "/runs", {"tasks": BUCKETS + 1})
    assert refused.status == 400, refused.body
    assert call(deps, "POST", "/runs", {"tasks": BUCKETS}).status in (200, 201)
    spec = call(deps, "GET", "/openapi.json")
    assert spec.status == 200
    assert set(spec.body["paths"]) == {
        "/runs",
        "/steps/{name}",
        "/runs/{run_id}/finish",
        "/runs/{run_id}",
        "/openapi.json",
    }


def test_the_evaluation_table_is_printed_in_aligned_columns() -> None:
    from shared.platform.terminal import format_table

    text = format_table(
        [
            {"method": "P-TopFreq", "metric": "recall@10", "value": 0.166},
            {"method": "ranker", "metric": "recall@10", "value": 0.19, "ci_low": 0.01},
        ]
    )
    lines = text.splitlines()
    assert lines[0].split() == ["method", "metric", "value", "ci_low"]
    assert lines[2].split() == ["P-TopFreq", "recall@10", "0.1660"]
    assert lines[3].split() == ["ranker", "recall@10", "0.1900", "0.0100"]
    assert len({len(line.rstrip()) for line in lines[:2]}) == 1
    assert format_table("already text") == "already text"


def test_no_personal_tree_for_a_shopper_who_objects_or_was_erased_during_the_run(
    deps: NightlyDependencies,
) -> None:
    from shared.privacy_marks.marks import PrivacyGate, ShopperHasher
    from tests.unit.test_privacy import KEY, MemoryMarks

    marks, hasher = MemoryMarks(), ShopperHasher(KEY)
    call(deps, "POST", "/runs", {"run_id": "run-1", "cutoff": "2026-10-26"})
    marks.put("r1", hasher("r1", "s1"), "erased", NOW + timedelta(seconds=1))  # after the start
    deps.privacy = PrivacyGate(marks, hasher, clock=lambda: NOW)
    compiled = call(deps, "POST", "/steps/compile_trees", {"run_id": "run-1"})
    assert compiled.status == 200, compiled.body
    assert (compiled.body["personal_trees"], compiled.body["suppressed_shoppers"]) == (1, 1)
    assert {t.shopper_id for t in deps.trees.written} == {None, "s2"}  # type: ignore[attr-defined]


def _shard_record(personal: int, status: str = "succeeded") -> StepRecord:
    summary = {
        "scored_shoppers": personal,
        "retailers": ["r1"],
        "personal_trees": personal,
        "trees_written": personal,
        "bytes": 1000 * personal,
        "max_bytes": 1500,
        "complement_rows": 7,
    }
    return StepRecord(
        status=status,
        started_at=NOW,
        seconds=1.0,
        summary=summary if status == "succeeded" else None,
    )


def test_compile_trees_sums_the_shards_of_the_run_and_refuses_an_incomplete_set(
    deps: NightlyDependencies,
) -> None:
    call(deps, "POST", "/runs", {"run_id": "run-1", "cutoff": "2026-10-26"})
    runs = deps.runs
    runs.record_step("run-1", "shard_0_of_2", _shard_record(3))
    runs.record_step("run-1", "shard_1_of_2", _shard_record(0, status="failed"))
    refused = call(deps, "POST", "/steps/compile_trees", {"run_id": "run-1"})
    assert (refused.status, refused.body["error"]["code"]) == (409, "not_compiled")
    assert deps.trees.written == []  # type: ignore[attr-defined]

    runs.record_step("run-1", "shard_1_of_2", _shard_record(4))  # the task, retried
    compiled = call(deps, "POST", "/steps/compile_trees", {"run_id": "run-1"})
    assert compiled.status == 200, compiled.body
    summary = compiled.body
    assert (summary["shards"], summary["personal_trees"], summary["default_trees"]) == (2, 7, 1)
    assert summary["trees_written"] == 8 and summary["tree_bytes_mean"] == 1000
    # Only the default tree is written here: the shards wrote the personal ones.
    assert [t.shopper_id for t in deps.trees.written] == [None]  # type: ignore[attr-defined]


def test_shards_are_bucket_ranges_that_tile_every_bucket_once() -> None:
    assert Shard(1, 4).predicate() == "shard_bucket BETWEEN 256 AND 511"
    assert WHOLE.predicate() == f"shard_bucket BETWEEN 0 AND {BUCKETS - 1}"
    assert bucket_sql() == "MOD(MOD(FARM_FINGERPRINT(shopper_id), 1024) + 1024, 1024)"
    for count in (1, 2, 3, 4, 7, 100, 1000, BUCKETS):
        covered = [b for i in range(count) for b in Shard(i, count).buckets]
        assert covered == list(range(BUCKETS))  # every bucket in exactly one shard
        sizes = {len(Shard(i, count).buckets) for i in range(count)}
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert WHOLE.name == "0-of-1"
    for index, count in ((0, 0), (2, 2), (-1, 3), (0, BUCKETS + 1)):
        with pytest.raises(ValueError, match="need 0 <= index < count"):
            Shard(index, count)


class Artifacts:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, name: str, data: bytes) -> None:
        self.objects[name] = data

    def get(self, name: str) -> bytes:
        return self.objects[name]


def test_the_trees_take_the_learnt_offer_levels_once_the_run_published_a_policy(
    deps: NightlyDependencies,
) -> None:
    """A run whose ``offer_policy`` step published a policy: the shards' trees offer each
    shopper the learnt level (within the campaign's bounds), recorded as ``learnt:<run>``;
    a run without one keeps the rules."""
    import dataclasses

    import numpy as np

    from shared.decisions.trees import PersonalizedPromotion
    from shared.nightly.offers import ARTIFACT, FEATURES, campaign_levels
    from shared.nightly.training import artifact
    from shared.offers.learning import CONTROL, OfferLogs, OfferPolicy, UpliftModel

    (promo,) = deps.campaigns.active()
    levels = campaign_levels(promo)
    rng = np.random.default_rng(3)
    n = 3_000
    features = rng.uniform(0, 1, (n, len(FEATURES)))
    arm = rng.choice([CONTROL, *range(len(levels))], size=n)
    # Shoppers with a high first feature respond to any level; no one else does.
    sales = 5 + 6 * (features[:, 0] > 0.5) * (arm != CONTROL) + rng.normal(0, 1, n)
    generosity = np.array([float(v.generosity_pct) for v in levels])
    discount = np.where(arm == CONTROL, 0.0, generosity[np.maximum(arm, 0)] / 100 * sales)
    logs = OfferLogs(features, arm, np.full(n, 0.5), arm != CONTROL, sales, discount)
    policy = OfferPolicy(UpliftModel.fit(logs, levels), margin=0.3)
    artifacts = Artifacts()
    artifacts.put(artifact("run-1", ARTIFACT), policy.to_json().encode())
    context = deps.model_context
    deps.model_context = lambda run_id, cutoff: dataclasses.replace(
        context(run_id, cutoff), artifacts=artifacts
    )
    batches = deps.outputs.shopper_batches

    def with_features(run_id: str, shard: Shard, batch: int) -> Iterator[list[ShopperOutputs]]:
        for outputs in batches(run_id, shard, batch):
            yield [
                dataclasses.replace(o, offer_features={"promo": (0.9, 0.5, 0.5, 0.5, 0.5)})
                for o in outputs
            ]

    deps.outputs.shopper_batches = with_features  # type: ignore[method-assign]
    call(deps, "POST", "/runs", {"run_id": "run-1", "cutoff": "2026-10-26"})
    without = call(deps, "POST", "/steps/compile_trees", {"run_id": "run-1"}).body
    assert without["learnt_offers"] == 0
    deps.runs.record_step(
        "run-1",
        "offer_policy",
        StepRecord(status="succeeded", started_at=NOW, summary={"published": True}),
    )
    compiled = call(deps, "POST", "/steps/compile_trees", {"run_id": "run-1"}).body
    assert compiled["learnt_offers"] == 2, compiled
    for tree in deps.trees.written[-3:]:  # type: ignore[attr-defined]
        if tree.shopper_id is None:
            continue
        (offer,) = [
            e.offer for e in tree.experiences.values() if isinstance(e, PersonalizedPromotion)
        ]
        assert offer is not None and offer.policy == "learnt:run-1"
        assert offer.chosen in levels
        # A responder to any level is offered the least generous one (the others cost more).
        assert offer.chosen.generosity_pct == min(v.generosity_pct for v in levels)
