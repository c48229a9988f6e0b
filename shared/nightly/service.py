"""The nightly step service: what the workflow's HTTP calls do (docs/NIGHTLY.md).

- ``begin_run``: resolve the run id and the cut-off, record the run as running.
- ``run_step``: run one step for a run and record it. The model steps (``features``,
  ``train``, ``evaluate``, ``score``) are ``shared.nightly.steps.STEPS``, imported when
  first called; ``compile_trees`` and ``publish`` are here.
- ``finish_run``: delete the run's work rows, record the outcome and the workflow's own
  summary.

Every step is idempotent for a ``run_id``: the workflow may retry any of them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from shared.campaigns.model import Campaign
from shared.decisions.compiler import (
    Complement,
    PersonalRules,
    ScoredProduct,
    SpendProfile,
    compile_default_tree,
    compile_personal_tree,
)
from shared.decisions.trees import ExperienceTree, PersonalizedPromotion
from shared.nightly.context import StepContext
from shared.nightly.runs import (
    CurrentRun,
    NightlyRunStore,
    Outcome,
    RunRecord,
    StepRecord,
)
from shared.nightly.shards import WHOLE, Shard
from shared.nightly.tables import RETIRED_OUTPUTS, WORK_TABLES
from shared.offers.levels import OfferLevel
from shared.privacy_marks.marks import NO_MARKS, Gate

log = logging.getLogger(__name__)

MODEL_STEPS = ("features", "train", "evaluate", "score")
OWN_STEPS = ("offer_policy", "compile_trees", "publish")
STEP_NAMES = (*MODEL_STEPS, *OWN_STEPS)


class NightlyError(Exception):
    """A refusal the workflow must not retry (answered 4xx/5xx with ``code``)."""

    status = 400
    code = "invalid_request"


class UnknownRunError(NightlyError):
    status, code = 404, "unknown_run"


class StepUnavailableError(NightlyError):
    """The model steps are not part of this build (``shared.nightly.steps`` is absent)."""

    status, code = 501, "step_unavailable"


class NothingToCompileError(NightlyError):
    status, code = 409, "no_scores"


class NotCompiledError(NightlyError):
    status, code = 409, "not_compiled"


class TransientError(Exception):
    """A store did not answer: the workflow retries the step (HTTP 503)."""


# --- ports --------------------------------------------------------------------------------


class NightlyOutputs(Protocol):
    """What the model steps wrote for a run (BigQuery tables of ``shared.nightly.context``)."""

    def scores(self, run_id: str, shard: Shard = WHOLE) -> Iterable[tuple[str, str, ScoredProduct]]:
        """(retailer, shopper, scored product) rows of the shard's shoppers."""
        ...

    def complements(
        self, run_id: str, shard: Shard = WHOLE, triggers: int | None = None
    ) -> Iterable[tuple[str, Complement]]:
        """(retailer, complement) rows; with ``triggers``, only those of the products in
        the top ``triggers`` of the shard's shoppers (what their trees can use)."""
        ...

    def profiles(
        self, run_id: str, shard: Shard = WHOLE
    ) -> Iterable[tuple[str, str, SpendProfile]]:
        """(retailer, shopper, spend profile) rows of the shard's shoppers."""
        ...

    def new_products(
        self, run_id: str, shard: Shard = WHOLE
    ) -> Iterable[tuple[str, str, str, int]]:
        """(retailer, shopper, product never bought, rank) rows of the shard's shoppers."""
        ...

    def delete_run(self, run_id: str, tables: Sequence[str]) -> dict[str, int]:
        """Deletes the run's rows of ``tables`` (of ``tables.WORK_TABLES`` and
        ``tables.RETIRED_OUTPUTS``); the rows deleted per table."""
        ...

    def shopper_batches(
        self, run_id: str, shard: Shard, batch: int
    ) -> Iterable[list[ShopperOutputs]]:
        """The shard's scored shoppers, each with their scores, profile and new products,
        in batches of at most ``batch`` shoppers, streamed (never the whole shard at once)."""
        ...


@dataclass(frozen=True)
class ShopperOutputs:
    """What the model steps wrote for one scored shopper of a run."""

    retailer_id: str
    shopper_id: str
    scores: list[ScoredProduct]
    profile: SpendProfile | None
    new_products: list[str]  # best first
    # Their behaviour towards each live promotion (the offer policy's features), if any.
    offer_features: dict[str, tuple[float, ...]] = field(default_factory=dict)


def group_outputs(
    scores: Iterable[tuple[str, str, ScoredProduct]],
    profiles: Iterable[tuple[str, str, SpendProfile]],
    new_products: Iterable[tuple[str, str, str, int]],
    batch: int,
) -> Iterator[list[ShopperOutputs]]:
    """Row-wise outputs grouped per scored shopper, in batches (an in-memory adapter's
    ``shopper_batches``: it holds everything, the BigQuery one streams)."""
    by_shopper: dict[tuple[str, str], list[ScoredProduct]] = defaultdict(list)
    for retailer, shopper, scored in scores:
        by_shopper[(retailer, shopper)].append(scored)
    spend = {(r, s): p for r, s, p in profiles}
    ranked: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for retailer, shopper, product, rank in new_products:
        ranked[(retailer, shopper)].append((rank, product))
    keys = sorted(by_shopper)
    for start in range(0, len(keys), batch):
        yield [
            ShopperOutputs(
                r,
                s,
                by_shopper[(r, s)],
                spend.get((r, s)),
                [p for _, p in sorted(ranked.get((r, s), []))],
            )
            for r, s in keys[start : start + batch]
        ]


class CampaignSource(Protocol):
    def active(self) -> list[Campaign]: ...


class TreeWriter(Protocol):
    def put_many(self, trees: Iterable[ExperienceTree], batch_size: int) -> int:
        """Write trees in bulk; return how many."""
        ...


@dataclass
class NightlyDependencies:
    runs: NightlyRunStore
    outputs: NightlyOutputs
    campaigns: CampaignSource
    trees: TreeWriter
    model_context: Callable[[str, date], StepContext]  # builds the model steps' context
    is_transient: Callable[[BaseException], bool]
    # No personal tree for a shopper who objects, nor for one erased after the run began
    # (its scores may come from data read before the erasure): docs/PRIVACY.md.
    privacy: Gate
    rules: PersonalRules = field(default_factory=PersonalRules)
    write_batch: int = 500
    compile_batch: int = 2_000  # shoppers a shard holds at once while compiling
    shard_tasks: int = 1  # tasks of the nightly_shards job, unless a run asks otherwise
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


# --- runs ---------------------------------------------------------------------------------


def begin_run(
    deps: NightlyDependencies,
    run_id: str | None,
    cutoff: date | None,
    tasks: int | None = None,
) -> dict[str, Any]:
    """Start (or resume) a run: the cut-off defaults to yesterday (UTC); ``tasks``, the
    shard job's task count for this run, to ``deps.shard_tasks``."""
    now = deps.clock()
    existing = deps.runs.get(run_id) if run_id else None
    if existing is not None:
        if cutoff is not None and cutoff != existing.cutoff:
            raise NightlyError(f"run {run_id} has cut-off {existing.cutoff}, not {cutoff}")
        record = existing
    else:
        record = RunRecord(
            run_id=run_id or f"nightly-{now:%Y%m%d-%H%M%S}",
            cutoff=cutoff or (now - timedelta(days=1)).date(),
            started_at=now,
        )
    _store(lambda: deps.runs.begin(record), deps)
    log.info("nightly run begun", extra={"run_id": record.run_id, "cutoff": str(record.cutoff)})
    return {
        "run_id": record.run_id,
        "cutoff": record.cutoff.isoformat(),
        "started_at": record.started_at.isoformat(),
        "tasks": tasks or deps.shard_tasks,
    }


def _run(deps: NightlyDependencies, run_id: str) -> RunRecord:
    record: RunRecord | None = _store(lambda: deps.runs.get(run_id), deps)
    if record is None:
        raise UnknownRunError(f"no run {run_id}: begin it first (POST /runs)")
    return record


def get_run(deps: NightlyDependencies, run_id: str) -> dict[str, Any]:
    return _run(deps, run_id).model_dump(mode="json")


def finish_run(
    deps: NightlyDependencies,
    run_id: str,
    outcome: Outcome,
    workflow_summary: dict[str, Any] | None,
) -> dict[str, Any]:
    record = _run(deps, run_id)
    if outcome == "published" and record.status != "published":
        raise NotCompiledError(f"run {run_id} was not published")
    # The rows first: a retried finish deletes nothing more and records the outcome. A run
    # that is not the live one has its outputs deleted too (nothing will compile from
    # them); the live one keeps them, whatever outcome the workflow reports after.
    current = _store(deps.runs.current, deps)
    tables = [t.name for t in WORK_TABLES]
    if current is None or current.run_id != run_id:
        tables += [t.name for t in RETIRED_OUTPUTS]
    deleted = _store(lambda: deps.outputs.delete_run(run_id, tables), deps)
    now = deps.clock()
    _store(lambda: deps.runs.finish(run_id, outcome, now, workflow_summary), deps)
    log.info(
        "nightly run finished",
        extra={"run_id": run_id, "outcome": outcome, "rows_deleted": deleted},
    )
    return _run(deps, run_id).model_dump(mode="json")


def _store(call: Callable[[], Any], deps: NightlyDependencies) -> Any:
    try:
        return call()
    except Exception as exc:
        if deps.is_transient(exc):
            raise TransientError(str(exc)) from exc
        raise


# --- steps --------------------------------------------------------------------------------


def model_steps() -> Mapping[str, Callable[[StepContext], dict[str, Any]]]:
    """The modelling half's steps, imported when first needed."""
    try:
        module = importlib.import_module("shared.nightly.steps")
    except ModuleNotFoundError as exc:
        if exc.name != "shared.nightly.steps":
            raise
        raise StepUnavailableError(
            "the model steps (shared.nightly.steps) are not part of this build"
        ) from exc
    steps: Mapping[str, Callable[[StepContext], dict[str, Any]]] = module.STEPS
    return steps


def run_step(deps: NightlyDependencies, name: str, run_id: str) -> dict[str, Any]:
    """Run one step of a run, recording its start, duration and summary (or error)."""
    if name not in STEP_NAMES:
        raise NightlyError(f"unknown step {name!r}; steps: {', '.join(STEP_NAMES)}")
    record = _run(deps, run_id)
    started_at = deps.clock()
    started = time.monotonic()
    _store(
        lambda: deps.runs.record_step(
            run_id, name, StepRecord(status="running", started_at=started_at)
        ),
        deps,
    )
    try:
        if name == "compile_trees":
            summary = compile_trees(deps, run_id)
        elif name == "offer_policy":
            from shared.nightly.offers import learn_offer_policy

            context = deps.model_context(run_id, record.cutoff)
            summary = learn_offer_policy(context, _store(deps.campaigns.active, deps))
        elif name == "publish":
            summary = publish(deps, record)
        else:
            step = model_steps().get(name)
            if step is None:
                raise StepUnavailableError(f"shared.nightly.steps has no step {name!r}")
            summary = step(deps.model_context(run_id, record.cutoff))
    except BaseException as exc:
        seconds = time.monotonic() - started
        failed = StepRecord(
            status="failed",
            started_at=started_at,
            seconds=round(seconds, 3),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        try:
            deps.runs.record_step(run_id, name, failed)
        except Exception:
            log.exception("could not record the failed step", extra={"run_id": run_id})
        if not isinstance(exc, NightlyError | TransientError) and deps.is_transient(exc):
            raise TransientError(str(exc)) from exc
        raise
    seconds = round(time.monotonic() - started, 3)
    done = StepRecord(
        status="succeeded", started_at=started_at, seconds=seconds, summary=_jsonable(summary)
    )
    _store(lambda: deps.runs.record_step(run_id, name, done), deps)
    log.info("nightly step done", extra={"run_id": run_id, "step": name, "seconds": seconds})
    answer: dict[str, Any] = _jsonable(summary)
    return answer | {"step": name, "run_id": run_id, "seconds": seconds}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


# --- compile_trees ------------------------------------------------------------------------

SHARD_STEP = re.compile(r"^shard_(\d+)_of_(\d+)$")
_SUMMED = (
    "personal_trees",
    "suppressed_shoppers",
    "trees_written",
    "shoppers_with_profile",
    "shoppers_with_basket_tension",
    "complement_nodes",
    "new_product_recommendations",
    "bytes",
    "learnt_offers",
)


def shard_step(shard: Shard) -> str:
    """The name under which a shard's work is recorded in the run's ``steps``."""
    return f"shard_{shard.index}_of_{shard.count}"


def compile_shard(deps: NightlyDependencies, run_id: str, shard: Shard) -> dict[str, Any]:
    """Personal trees for the shard's scored shoppers, from the run's scores, complements
    and spend profiles and the live campaigns; written to Bigtable in bulk, stamped with
    the compile time and valid ``rules.validity``. Rewrites the same rows when re-run."""
    now = deps.clock()
    complements: dict[str, dict[str, list[Complement]]] = defaultdict(lambda: defaultdict(list))
    complement_rows = 0
    # Only the complements of the shard's shoppers' top products: a task's memory follows
    # its shard, not the retailers' whole catalogue of pairs (docs/NIGHTLY.md).
    for retailer, complement in deps.outputs.complements(
        run_id, shard, deps.rules.complement_triggers
    ):
        complements[retailer][complement.product_id].append(complement)
        complement_rows += 1
    record = deps.runs.get(run_id)
    began = record.started_at if record is not None else now
    campaigns = deps.campaigns.active()
    stats: dict[str, int] = defaultdict(int)
    retailers: set[str] = set()
    choose_offers = _offer_chooser(deps, record, campaigns)
    # Where a task's time goes (issue 21: does any part grow faster than the shard?).
    parts: dict[str, float] = defaultdict(float)
    started = time.monotonic()

    def trees() -> Iterable[ExperienceTree]:
        # One batch of shoppers at a time: their outputs, privacy marks and trees.
        batches = iter(deps.outputs.shopper_batches(run_id, shard, deps.compile_batch))
        while True:
            clock = time.monotonic()
            batch = next(batches, None)
            parts["read_seconds"] += time.monotonic() - clock
            if batch is None:
                return
            clock = time.monotonic()
            keys = {(o.retailer_id, o.shopper_id): o for o in batch}
            marks = _store(functools.partial(deps.privacy.marks, keys), deps) if keys else {}
            parts["marks_seconds"] += time.monotonic() - clock
            clock = time.monotonic()
            offers = choose_offers(batch) if choose_offers else [None] * len(batch)
            parts["offers_seconds"] += time.monotonic() - clock
            offers_of = {
                (o.retailer_id, o.shopper_id): v for o, v in zip(batch, offers, strict=True)
            }
            for key, outputs in sorted(keys.items()):
                retailer, shopper = key
                retailers.add(retailer)
                stats["scored_shoppers"] += 1
                stats["shoppers_with_profile"] += outputs.profile is not None
                if marks.get(key, NO_MARKS).blocks(began, now):
                    stats["suppressed_shoppers"] += 1
                    continue
                clock = time.monotonic()
                tree = compile_personal_tree(
                    retailer,
                    shopper,
                    scores=outputs.scores,
                    complements=complements.get(retailer, {}),
                    profile=outputs.profile,
                    campaigns=campaigns,
                    now=now,
                    run_id=run_id,
                    rules=deps.rules,
                    new_products=outputs.new_products,
                    offers=offers_of[key],
                    offer_policy=f"learnt:{run_id}",
                )
                stats["learnt_offers"] += sum(
                    isinstance(e, PersonalizedPromotion)
                    and e.offer is not None
                    and e.offer.policy != "rules"
                    for e in tree.experiences.values()
                )
                size = len(tree.serialize())
                stats["personal_trees"] += 1
                stats["bytes"] += size
                stats["max_bytes"] = max(stats["max_bytes"], size)
                stats["with_basket_tension"] += "basket:tension" in tree.experiences
                stats["complement_nodes"] += sum(n.startswith("after:") for n in tree.nodes)
                stats["new_product_recommendations"] += sum(
                    e.startswith("new:") for e in tree.experiences
                )
                parts["tree_seconds"] += time.monotonic() - clock
                yield tree

    written = _store(lambda: deps.trees.put_many(trees(), deps.write_batch), deps)
    total = time.monotonic() - started
    # The rest of the task's time: the Bigtable writes (put_many pulls the trees).
    parts["write_seconds"] = total - sum(parts.values())
    return {
        "shard": shard.name,
        "scored_shoppers": stats["scored_shoppers"],
        "retailers": sorted(retailers),
        "personal_trees": stats["personal_trees"],
        "suppressed_shoppers": stats["suppressed_shoppers"],
        "trees_written": written,
        "shoppers_with_profile": stats["shoppers_with_profile"],
        "shoppers_with_basket_tension": stats["with_basket_tension"],
        "complement_rows": complement_rows,
        "complement_nodes": stats["complement_nodes"],
        "new_product_recommendations": stats["new_product_recommendations"],
        "bytes": stats["bytes"],
        "max_bytes": stats["max_bytes"],
        "learnt_offers": stats["learnt_offers"],
        "parts": {name: round(seconds, 3) for name, seconds in sorted(parts.items())},
    }


def offer_policy_published(record: RunRecord | None) -> bool:
    """Whether the run's ``offer_policy`` step published a learnt policy."""
    step = record.steps.get("offer_policy") if record is not None else None
    return bool(step and step.status == "succeeded" and (step.summary or {}).get("published"))


def _offer_chooser(
    deps: NightlyDependencies, record: RunRecord | None, campaigns: Sequence[Campaign]
) -> Callable[[list[ShopperOutputs]], list[dict[str, OfferLevel] | None]] | None:
    """A batch of shoppers' learnt promotion levels (one prediction per batch), when the
    run published an offer policy."""
    if record is None or not offer_policy_published(record):
        return None
    from shared.nightly.offers import learnt_levels_batch, load_policy, promotions

    policy = load_policy(deps.model_context(record.run_id, record.cutoff))
    promos = {c.campaign_id: c for c in promotions(campaigns)}

    def choose(batch: list[ShopperOutputs]) -> list[dict[str, OfferLevel] | None]:
        return list(learnt_levels_batch(policy, promos, [o.offer_features for o in batch]))

    return choose


def run_shard(
    deps: NightlyDependencies,
    run_id: str,
    shard: Shard,
    score: Callable[[StepContext, Shard], dict[str, Any]] | None,
) -> dict[str, Any]:
    """One task of the ``nightly_shards`` job: score the shard's shoppers (``score``, the
    model half's ``score_shard``; None when the run's rows were written for it), then
    compile their trees; recorded in the run as ``shard_{i}_of_{n}``."""
    record = _run(deps, run_id)
    name = shard_step(shard)
    started_at = deps.clock()
    started = time.monotonic()
    _store(
        lambda: deps.runs.record_step(
            run_id, name, StepRecord(status="running", started_at=started_at)
        ),
        deps,
    )
    try:
        context = deps.model_context(run_id, record.cutoff)
        scored = score(context, shard) if score else {}
        if offer_policy_published(record):
            from shared.nightly.offers import write_shopper_features

            scored = {
                **scored,
                "shopper_offer_features": write_shopper_features(context, shard.predicate()),
            }
        scored_at = time.monotonic()
        summary = compile_shard(deps, run_id, shard) | {
            "scoring": _jsonable(scored),
            "scoring_seconds": round(scored_at - started, 3),
            "compile_seconds": round(time.monotonic() - scored_at, 3),
        }
    except BaseException as exc:
        failed = StepRecord(
            status="failed",
            started_at=started_at,
            seconds=round(time.monotonic() - started, 3),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        with contextlib.suppress(Exception):
            deps.runs.record_step(run_id, name, failed)
        raise
    done = StepRecord(
        status="succeeded",
        started_at=started_at,
        seconds=round(time.monotonic() - started, 3),
        summary=_jsonable(summary),
    )
    _store(lambda: deps.runs.record_step(run_id, name, done), deps)
    log.info("nightly shard done", extra={"run_id": run_id, "shard": shard.name})
    return summary


def _shard_summaries(record: RunRecord | None) -> list[dict[str, Any]]:
    """The summaries of the run's last complete set of shards (one per index of a count);
    a count some of whose shards did not succeed is not complete."""
    if record is None:
        return []
    by_count: dict[int, dict[int, StepRecord]] = defaultdict(dict)
    for name, step in record.steps.items():
        match = SHARD_STEP.match(name)
        if match:
            by_count[int(match.group(2))][int(match.group(1))] = step
    complete = [
        (max(s.started_at for s in steps.values()), count)
        for count, steps in by_count.items()
        if set(steps) == set(range(count))
        and all(s.status == "succeeded" and s.summary is not None for s in steps.values())
    ]
    if not complete:
        if by_count:
            raise NotCompiledError(
                f"run {record.run_id}: its shards did not all succeed "
                f"({', '.join(sorted(n for n in record.steps if SHARD_STEP.match(n)))})"
            )
        return []
    _, count = max(complete)
    return [by_count[count][i].summary or {} for i in range(count)]


def compile_trees(deps: NightlyDependencies, run_id: str) -> dict[str, Any]:
    """Default trees for every retailer, and the run's personal trees: those the
    ``nightly_shards`` job's tasks compiled (their records are summed here), or, for a
    run without shards (a small deployment, the step service's tests), every scored
    shopper's compiled here as one shard."""
    record = deps.runs.get(run_id)
    shards = _shard_summaries(record)
    if not shards:
        shards = [compile_shard(deps, run_id, WHOLE)]
    scored = sum(int(s.get("scored_shoppers", 0)) for s in shards)
    if not scored:
        raise NothingToCompileError(f"run {run_id} has no shopper_product_scores")
    now = deps.clock()
    campaigns = deps.campaigns.active()
    retailers = sorted(
        {r for s in shards for r in s.get("retailers", [])}
        | {r for c in campaigns for r in c.retailer_ids}
    )
    validity = deps.rules.validity
    defaults = [compile_default_tree(r, campaigns, now, validity) for r in retailers]
    written = _store(lambda: deps.trees.put_many(defaults, deps.write_batch), deps)
    total = {key: sum(int(s.get(key, 0)) for s in shards) for key in _SUMMED}
    personal = total["personal_trees"]
    return {
        "run_id": run_id,
        "compiled_at": now.isoformat(),
        "valid_until": (now + validity).isoformat(),
        "retailers": retailers,
        "live_campaigns": sum(1 for c in campaigns if c.ends_at > now),
        "shards": len(shards),
        "default_trees": len(defaults),
        "personal_trees": personal,
        "suppressed_shoppers": total["suppressed_shoppers"],
        "trees_written": written + total["trees_written"],
        "shoppers_with_profile": total["shoppers_with_profile"],
        "shoppers_with_basket_tension": total["shoppers_with_basket_tension"],
        "complement_rows": max(int(s.get("complement_rows", 0)) for s in shards),
        "complement_nodes": total["complement_nodes"],
        "new_product_recommendations": total["new_product_recommendations"],
        "learnt_offers": total["learnt_offers"],
        "tree_bytes_mean": round(total["bytes"] / personal) if personal else 0,
        "tree_bytes_max": max(int(s.get("max_bytes", 0)) for s in shards),
    }


# --- publish ------------------------------------------------------------------------------


def publish(deps: NightlyDependencies, record: RunRecord) -> dict[str, Any]:
    """Record the run as the live one. Its trees were written by ``compile_trees`` (live as
    soon as written; the gate ran before); publishing makes the run the current one."""
    compiled = record.steps.get("compile_trees")
    if compiled is None or compiled.status != "succeeded" or compiled.summary is None:
        raise NotCompiledError(f"run {record.run_id}: compile_trees has not succeeded")
    evaluated = record.steps.get("evaluate")
    now = deps.clock()
    current = CurrentRun(
        run_id=record.run_id,
        cutoff=record.cutoff,
        published_at=now,
        trees=compiled.summary,
        evaluation=evaluated.summary if evaluated and evaluated.summary else None,
    )
    previous = _store(lambda: deps.runs.set_current(current), deps)
    _store(lambda: deps.runs.finish(record.run_id, "published", now, None), deps)
    if previous is not None and previous.run_id != record.run_id:
        # Its trees are replaced: nothing reads its outputs any more.
        retired = [t.name for t in RETIRED_OUTPUTS]
        _store(lambda: deps.outputs.delete_run(previous.run_id, retired), deps)
    return {
        "run_id": record.run_id,
        "published_at": now.isoformat(),
        "previous_run_id": previous.run_id if previous else None,
        "personal_trees": compiled.summary.get("personal_trees"),
    }


def current_run(deps: NightlyDependencies) -> dict[str, Any] | None:
    current = _store(deps.runs.current, deps)
    return current.model_dump(mode="json") if current else None


def step_names() -> Sequence[str]:
    return STEP_NAMES
