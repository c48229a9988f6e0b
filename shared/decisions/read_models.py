"""Decisions frozen into BigQuery: what was shown, what was held out, and why.

Every decision published on ``shopper-experiences`` becomes one ``decisions`` row and one
``decision_experiences`` row per experience it considered (shown, held out for the
control group, or withheld by a campaign rule): the reports count impressions, eligible
and held-out shoppers from there. Row identities are deterministic and carry the retailer
(``{retailer}/{event id}``, plus ``:{experience id}``, as the freezer's read models do:
one retailer's event ids never hide another's rows), so redelivery inserts nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from shared.contract.messages import InboundMessage, PoisonMessage
from shared.decisions.engine import Decision
from shared.freezer.read_models import DATASET, Row, row_id
from shared.freezer.service import ReadModelSink
from shared.platform.resource_model import BigQueryTable, Column
from shared.platform.sinks import DeadLetterSink
from shared.privacy_marks.marks import Gate, OpenGate

_KEYS = (
    Column(name="row_id", type="STRING", mode="REQUIRED"),
    Column(name="event_id", type="STRING", mode="REQUIRED", description="The event decided on"),
    Column(name="retailer_id", type="STRING", mode="REQUIRED"),
    Column(name="shopper_id", type="STRING", mode="REQUIRED"),
    Column(name="session_id", type="STRING"),
    Column(name="occurred_at", type="TIMESTAMP", mode="REQUIRED"),
    Column(name="decided_at", type="TIMESTAMP"),
    Column(name="tree_version", type="STRING", mode="REQUIRED"),
    Column(name="node_id", type="STRING", mode="REQUIRED"),
)

DECISIONS = BigQueryTable(
    dataset=DATASET,
    name="decisions",
    description="One row per decision (per shopper event walked along a tree)",
    columns=(
        *_KEYS,
        Column(name="event_type", type="STRING", mode="REQUIRED"),
        Column(name="personal_tree", type="BOOL", mode="REQUIRED"),
        Column(name="from_node", type="STRING", mode="REQUIRED"),
        Column(name="shown_count", type="INT64", mode="REQUIRED"),
        Column(name="held_out_count", type="INT64", mode="REQUIRED"),
        Column(name="withheld_count", type="INT64", mode="REQUIRED"),
    ),
    partition_field="occurred_at",
    clustering=("retailer_id", "shopper_id"),
)
DECISION_EXPERIENCES = BigQueryTable(
    dataset=DATASET,
    name="decision_experiences",
    description="One row per experience a decision considered: shown, held out or withheld",
    columns=(
        *_KEYS,
        Column(name="experience_id", type="STRING", mode="REQUIRED"),
        Column(name="experience_type", type="STRING", mode="REQUIRED"),
        Column(name="campaign_id", type="STRING"),
        Column(
            name="outcome",
            type="STRING",
            mode="REQUIRED",
            description="shown, held_out, other_retailer, outside_period, campaign_stopped, "
            "budget_exhausted, frequency_cap",
        ),
        # A shown personalized promotion's offer (docs/MODEL.md, "The offer policy").
        Column(
            name="offer_policy",
            type="STRING",
            description="What chose the level: campaign, rules or learnt:<run>",
        ),
        Column(name="offer_level", type="STRING", description="The level shown: 10%@1.5x"),
        Column(
            name="offer_policy_level",
            type="STRING",
            description="The level the policy chose (the one shown unless explored)",
        ),
        Column(name="generosity_pct", type="NUMERIC", description="The discount shown, in %"),
        Column(name="threshold", type="NUMERIC", description="The threshold shown"),
        Column(name="offer_chosen_by", type="STRING", description="policy or explore"),
        Column(
            name="offer_propensity",
            type="FLOAT64",
            description="The probability the level shown had of being shown",
        ),
    ),
    partition_field="occurred_at",
    clustering=("retailer_id", "campaign_id"),
)
DECISION_TABLES = (DECISIONS, DECISION_EXPERIENCES)


def _offer_columns(details: dict[str, Any]) -> dict[str, Any]:
    offer = details.get("offer")
    if not isinstance(offer, dict):
        return {}
    return {
        "offer_policy": offer.get("policy"),
        "offer_level": offer.get("level"),
        "offer_policy_level": offer.get("policy_level"),
        "generosity_pct": details.get("generosity_pct"),
        "threshold": details.get("threshold"),
        "offer_chosen_by": offer.get("chosen_by"),
        "offer_propensity": offer.get("propensity"),
    }


def rows_for_decision(decision: Decision) -> dict[str, list[Row]]:
    keys = {
        "event_id": decision.event_id,
        "retailer_id": decision.retailer_id,
        "shopper_id": decision.shopper_id,
        "session_id": decision.session_id,
        "occurred_at": decision.occurred_at.isoformat(),
        "decided_at": decision.decided_at.isoformat() if decision.decided_at else None,
        "tree_version": decision.tree_version,
        "node_id": decision.node_id,
    }
    decided = row_id(decision.retailer_id, decision.event_id)
    experiences = [
        {
            **keys,
            "row_id": f"{decided}:{s.experience_id}",
            "experience_id": s.experience_id,
            "experience_type": s.type,
            "campaign_id": s.campaign_id,
            "outcome": "shown",
            **_offer_columns(s.details),
        }
        for s in decision.shown
    ] + [
        {
            **keys,
            "row_id": f"{decided}:{w.experience_id}",
            "experience_id": w.experience_id,
            "experience_type": w.type,
            "campaign_id": w.campaign_id,
            "outcome": w.reason,
        }
        for w in decision.withheld
    ]
    return {
        DECISIONS.name: [
            {
                **keys,
                "row_id": decided,
                "event_type": decision.event_type,
                "personal_tree": decision.personal_tree,
                "from_node": decision.from_node,
                "shown_count": len(decision.shown),
                "held_out_count": len(decision.held_out),
                "withheld_count": len(decision.withheld),
            }
        ],
        DECISION_EXPERIENCES.name: experiences,
    }


def transform_decisions(
    messages: Sequence[InboundMessage], privacy: Gate | None = None
) -> tuple[dict[str, list[Row]], list[PoisonMessage]]:
    """Rows per table (de-duplicated on row_id) and the messages that are not decisions.
    With ``privacy``, a decision a privacy mark blocks (an objected shopper's; an erased
    shopper's decided before the erasure) yields no row."""
    tables: dict[str, dict[str, Row]] = {t.name: {} for t in DECISION_TABLES}
    poison: list[PoisonMessage] = []
    decisions: list[Decision] = []
    for message in messages:
        try:
            decision = Decision.model_validate_json(message.data)
        except ValidationError as exc:
            poison.append(
                PoisonMessage.of(
                    message, f"not a decision: {exc.errors(include_url=False)[0]['msg']}"
                )
            )
            continue
        decisions.append(decision)
    gate = privacy or OpenGate()
    blocked = gate.blocked(
        [(d.retailer_id, d.shopper_id, d.decided_at or d.occurred_at) for d in decisions]
    )
    for decision, drop in zip(decisions, blocked, strict=True):
        if drop:
            continue
        for table, rows in rows_for_decision(decision).items():
            for row in rows:
                tables[table].setdefault(row["row_id"], row)
    return {t: list(rows.values()) for t, rows in tables.items() if rows}, poison


def freeze_decisions(
    messages: Sequence[InboundMessage],
    *,
    sink: ReadModelSink,
    dead_letters: DeadLetterSink,
    privacy: Gate,
) -> dict[str, int]:
    """Freeze one batch of decisions (one MERGE per table); rows inserted per table.

    The messages that are not decisions are dead-lettered with their reason; a sink
    failure raises ``TransientSinkError`` to have the whole batch redelivered.
    """
    tables, poison = transform_decisions(messages, privacy)
    if poison:
        dead_letters.send(poison)
    return {t: sink.write(t, rows) for t, rows in sorted(tables.items())}
