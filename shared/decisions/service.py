"""The decision service: a batch of shopper-event messages in, decisions out.

For each shopper of the batch: read their live state and their trees (personal, then the
retailer's default; a stale tree is skipped; a personal tree brought up to date with the
campaign changes the default tree already holds, ``live_view``), apply their events in
time order with ``decide``, then write the new states and current experiences in one
batched write and publish every decision. Whatever the transport (push or pull), the
caller acknowledges the batch only once this returns; a redelivered event changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from shared.contract.events import ShopperEvent
from shared.contract.messages import InboundMessage, PoisonMessage, parse
from shared.decisions.engine import Decision, ShownExperience, apply, decide
from shared.decisions.trees import ExperienceTree, ShopperState, first_applicable, live_view
from shared.privacy_marks.marks import Gate

log = logging.getLogger(__name__)

ShopperKey = tuple[str, str]  # retailer, shopper


class CurrentExperiences(BaseModel):
    """What ``GET /v1/shoppers/{id}/experiences`` answers: the latest decision's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shopper_id: str
    event_id: str
    occurred_at: datetime
    decided_at: datetime
    tree_version: str
    node_id: str
    experiences: list[ShownExperience]


@dataclass(frozen=True)
class StateUpdate:
    retailer_id: str
    shopper_id: str
    state: ShopperState
    current: CurrentExperiences | None  # None: leave the current experiences as they are


class ShopperStateStore(Protocol):
    def read(self, keys: Sequence[ShopperKey]) -> dict[ShopperKey, ShopperState]: ...

    def write(self, updates: Sequence[StateUpdate]) -> None: ...


class TreeStore(Protocol):
    def personal(self, keys: Sequence[ShopperKey]) -> dict[ShopperKey, ExperienceTree]: ...

    def default(self, retailer_id: str) -> ExperienceTree | None: ...


class DecisionPublisher(Protocol):
    def publish(self, decisions: Sequence[Decision]) -> None: ...


class BudgetGate(Protocol):
    def exhausted(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class DecideDependencies:
    states: ShopperStateStore
    trees: TreeStore
    publisher: DecisionPublisher
    budgets: BudgetGate
    signing_key: bytes
    # Privacy marks: an objected shopper's events, an erased shopper's events ingested
    # before the erasure, are dropped unapplied (docs/PRIVACY.md).
    privacy: Gate


@dataclass
class DecideOutcome:
    events: int = 0
    decisions: int = 0
    redelivered: int = 0
    without_tree: int = 0
    suppressed: int = 0  # dropped by a privacy mark
    poison: list[PoisonMessage] = field(default_factory=list)
    waited_s: float = 0.0  # the oldest event's wait, from its ingestion to this batch
    read_s: float = 0.0  # states, trees and budgets read
    decide_s: float = 0.0  # the engine, pure
    write_s: float = 0.0  # states and current experiences written, decisions published


def decide_batch(
    messages: Sequence[InboundMessage], deps: DecideDependencies, now: datetime | None = None
) -> DecideOutcome:
    moment = now or datetime.now(UTC)
    outcome = DecideOutcome()
    by_shopper: dict[ShopperKey, list[ShopperEvent]] = defaultdict(list)
    oldest: datetime | None = None
    parsed_events: list[tuple[str, ShopperEvent, datetime]] = []
    for message in messages:
        parsed = parse(message)
        if isinstance(parsed, str):
            outcome.poison.append(PoisonMessage.of(message, parsed))
            continue
        parsed_events.append(parsed)
    blocked = deps.privacy.blocked([(r, e.shopper_id, at) for r, e, at in parsed_events])
    for (retailer_id, event, ingested_at), drop in zip(parsed_events, blocked, strict=True):
        if drop:
            outcome.suppressed += 1
            continue
        by_shopper[(retailer_id, event.shopper_id)].append(event)
        outcome.events += 1
        oldest = ingested_at if oldest is None else min(oldest, ingested_at)
    if not by_shopper:
        return outcome
    if oldest is not None:
        outcome.waited_s = max(0.0, (moment - oldest).total_seconds())
    clock = time.perf_counter()
    keys = list(by_shopper)
    states = deps.states.read(keys)
    personal = deps.trees.personal(keys)
    defaults = {r: deps.trees.default(r) for r in {r for r, _ in keys}}
    # The live default trees (not stale): their creatives are what every shopper of the
    # retailer is shown, whichever tree they are on (an edit shows within seconds).
    live_defaults = {r: first_applicable((t,), moment) for r, t in defaults.items()}
    creatives = {r: t.creatives() if t else {} for r, t in live_defaults.items()}
    exhausted = deps.budgets.exhausted()
    outcome.read_s, clock = time.perf_counter() - clock, time.perf_counter()
    updates: list[StateUpdate] = []
    decisions: list[Decision] = []
    for key in keys:
        retailer_id, shopper_id = key
        state = states.get(key, ShopperState())
        default = live_defaults[retailer_id]
        tree = first_applicable((personal.get(key), default), moment)
        stopped: frozenset[str] = frozenset()
        if tree is not None:
            # Campaign changes since the night: stopped ones withheld, new ones grafted.
            view = live_view(tree, default)
            tree, stopped = view.tree, view.stopped
        latest: Decision | None = None
        for event in sorted(by_shopper[key], key=lambda e: e.occurred_at):
            if tree is None:
                if event.event_id in state.recent_event_ids:
                    outcome.redelivered += 1
                else:
                    state = apply(state, event)
                    outcome.without_tree += 1
                continue
            state, decision = decide(
                tree,
                state,
                retailer_id,
                event,
                signing_key=deps.signing_key,
                exhausted_campaigns=exhausted,
                stopped_campaigns=stopped,
                decided_at=moment,
                creatives=creatives[retailer_id],
            )
            if decision is None:
                outcome.redelivered += 1
                continue
            decisions.append(decision)
            if state.last_event_at is None or decision.occurred_at >= state.last_event_at:
                latest = decision  # a late, older event does not replace what newer ones said
        current = None
        if latest is not None:
            current = CurrentExperiences(
                shopper_id=shopper_id,
                event_id=latest.event_id,
                occurred_at=latest.occurred_at,
                decided_at=moment,
                tree_version=latest.tree_version,
                node_id=latest.node_id,
                experiences=latest.shown,
            )
        updates.append(StateUpdate(retailer_id, shopper_id, state, current))
    outcome.decide_s, clock = time.perf_counter() - clock, time.perf_counter()
    deps.states.write(updates)
    if decisions:
        deps.publisher.publish(decisions)
    outcome.write_s = time.perf_counter() - clock
    outcome.decisions = len(decisions)
    log.info(
        "batch decided",
        extra={
            "events": outcome.events,
            "decisions": outcome.decisions,
            "redelivered": outcome.redelivered,
            "without_tree": outcome.without_tree,
            "suppressed": outcome.suppressed,
            "poison": len(outcome.poison),
            "waited_s": round(outcome.waited_s, 4),
            "read_s": round(outcome.read_s, 4),
            "decide_s": round(outcome.decide_s, 4),
            "write_s": round(outcome.write_s, 4),
        },
    )
    return outcome


def decision_message(decision: Decision) -> tuple[bytes, dict[str, str], str]:
    """A decision as published on ``shopper-experiences``: data, attributes, ordering key."""
    attributes: dict[str, Any] = {
        "event_id": decision.event_id,
        "retailer_id": decision.retailer_id,
        "shown": str(len(decision.shown)),
        "held_out": str(len(decision.held_out)),
    }
    return (
        decision.model_dump_json().encode(),
        attributes,
        f"{decision.retailer_id}#{decision.shopper_id}",
    )
