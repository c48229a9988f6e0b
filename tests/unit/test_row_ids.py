"""Every read model's ``row_id`` carries the retailer (issue 20), decisions included."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.contract.messages import InboundMessage
from shared.decisions.engine import Decision, ShownExperience, WithheldExperience
from shared.decisions.read_models import transform_decisions
from shared.freezer.read_models import LANDING_DATASET
from shared.system.resources import RETAILER_ROW_ID_TABLES, SYSTEM


def decision(retailer: str) -> Decision:
    return Decision(
        event_id="e-1",
        event_type="product_added_to_basket",
        retailer_id=retailer,
        shopper_id="s-1",
        session_id=None,
        occurred_at=datetime(2026, 12, 1, 12, tzinfo=UTC),
        tree_version="v1",
        personal_tree=False,
        from_node="root",
        node_id="pasta",
        shown=[ShownExperience(experience_id="x", type="banner", campaign_id=None, details={})],
        withheld=[
            WithheldExperience(experience_id="y", type="banner", campaign_id="c", reason="held_out")
        ],
    )


def test_the_same_event_id_under_two_retailers_gives_each_its_decision_rows() -> None:
    """One retailer posting another's event ids first must not hide the other's decisions."""
    messages = [
        InboundMessage(message_id=r, data=decision(r).model_dump_json().encode())
        for r in ("r1", "r2")
    ]
    tables, poison = transform_decisions(messages)
    assert poison == []
    assert sorted(r["row_id"] for r in tables["decisions"]) == ["r1/e-1", "r2/e-1"]
    assert sorted(r["row_id"] for r in tables["decision_experiences"]) == [
        "r1/e-1:x",
        "r1/e-1:y",
        "r2/e-1:x",
        "r2/e-1:y",
    ]


def test_every_table_keyed_on_a_retailer_event_is_migrated() -> None:
    """A table whose rows come from a retailer's events (row_id, event_id, retailer_id) has
    its old row ids migrated (``cartwise migrate-row-ids``); landings expire instead."""
    keyed = {
        t.name
        for t in SYSTEM.bigquery_tables
        if {"row_id", "event_id", "retailer_id"} <= set(t.column_names)
        and t.dataset != LANDING_DATASET
    }
    assert keyed == {t.name for t in RETAILER_ROW_ID_TABLES}
