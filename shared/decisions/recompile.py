"""Campaign changes into default trees, within seconds (docs/CAMPAIGNS.md, "Live in seconds").

``recompile_default_trees`` takes a batch of ``campaign-changes`` messages, reads the
active campaigns once, and recompiles the default tree of every retailer the batch touches
(the retailers a changed campaign ran on before and after the change), a retailer left with
no live campaign included: its tree then holds none, which is what stops the campaign on
shoppers' personal trees (``live_view``). Compiling from the campaigns as they are now
makes it idempotent: a redelivered or reordered change recompiles the same trees. Bad
messages are returned as poison, to be dead-lettered with their reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

from shared.campaigns.model import Campaign, CampaignChange
from shared.contract.messages import InboundMessage, PoisonMessage
from shared.decisions.compiler import compile_default_tree
from shared.decisions.trees import ExperienceTree

log = logging.getLogger(__name__)


class ActiveCampaigns(Protocol):
    def active(self) -> list[Campaign]: ...


class DefaultTrees(Protocol):
    def put(self, trees: Sequence[ExperienceTree]) -> None: ...


@dataclass
class RecompileOutcome:
    changes: int = 0
    retailers: list[str] = field(default_factory=list)
    live_campaigns: dict[str, int] = field(default_factory=dict)  # retailer -> live count
    poison: list[PoisonMessage] = field(default_factory=list)
    oldest_change_at: datetime | None = None


def recompile_default_trees(
    messages: Sequence[InboundMessage],
    *,
    campaigns: ActiveCampaigns,
    trees: DefaultTrees,
    now: datetime,
) -> RecompileOutcome:
    outcome = RecompileOutcome()
    retailers: set[str] = set()
    for message in messages:
        try:
            change = CampaignChange.model_validate_json(message.data)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"]) or "message"
            outcome.poison.append(
                PoisonMessage.of(message, f"not a campaign change: {where}: {error['msg']}")
            )
            continue
        outcome.changes += 1
        retailers.update(change.retailer_ids)
        if outcome.oldest_change_at is None or change.changed_at < outcome.oldest_change_at:
            outcome.oldest_change_at = change.changed_at
    if not retailers:
        return outcome
    active = campaigns.active()
    compiled = [compile_default_tree(retailer, active, now) for retailer in sorted(retailers)]
    trees.put(compiled)
    outcome.retailers = sorted(retailers)
    outcome.live_campaigns = {t.retailer_id: len(t.campaigns) for t in compiled}
    log.info(
        "default trees recompiled",
        extra={
            "changes": outcome.changes,
            "retailers": len(outcome.retailers),
            "poison": len(outcome.poison),
            "since_change_s": round((now - outcome.oldest_change_at).total_seconds(), 3)
            if outcome.oldest_change_at
            else None,
        },
    )
    return outcome
