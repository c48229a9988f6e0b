"""Default trees compiled from live campaigns, walked by the decision engine."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from shared.campaigns.model import Campaign
from shared.decisions.compiler import compile_default_tree
from shared.decisions.engine import decide
from shared.decisions.trees import ExperienceTree, ShopperState
from tests.unit.test_decisions import KEY, T0, add, remove, shown


def campaign(campaign_id: str, **changes: Any) -> Campaign:
    fields: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": f"campaign {campaign_id}",
        "retailer_ids": ["r1"],
        "experience_type": "personalized_promotion",
        "status": "active",
        "starts_at": T0 - timedelta(days=1),
        "ends_at": T0 + timedelta(days=10),
        "targeted_brands": [f"brand-{campaign_id}"],
        "threshold": Decimal(10),
        "control_share": 0.0,
    }
    return Campaign.model_validate(fields | changes)


def test_only_live_campaigns_of_the_retailer_are_compiled() -> None:
    tree = compile_default_tree(
        "r1",
        [
            campaign("a"),
            campaign("b", experience_type="tension_cart", reward="free delivery"),
            campaign("other", retailer_ids=["r2"]),
            campaign("old", status="archived"),
            campaign("over", ends_at=T0 - timedelta(hours=1), starts_at=T0 - timedelta(days=3)),
        ],
        T0,
    )
    assert set(tree.nodes) == {"root", "a", "b"}
    assert set(tree.experiences) == {"a:promotion", "a:tension", "b:tension"}
    assert tree.shopper_id is None and tree.valid_until == T0 + timedelta(days=2)
    assert ExperienceTree.deserialize(tree.serialize()) == tree
    same = compile_default_tree(
        "r1",
        [campaign("b", experience_type="tension_cart", reward="free delivery"), campaign("a")],
        T0,
    )
    assert same.tree_version == tree.tree_version  # same campaigns, same version


def test_a_shopper_walks_the_default_tree() -> None:
    tree = compile_default_tree(
        "r1", [campaign("a"), campaign("b", experience_type="tension_cart")], T0
    )
    state = ShopperState()
    walk = []
    for event in [
        add("p1", 2, "3.00", 10, brand="brand-a"),
        add("p2", 1, "1.00", 20, brand="brand-b"),
        add("p3", 1, "5.00", 30, brand="brand-a"),
        remove("p3", 1, "5.00", 40),
    ]:
        state, decision = decide(tree, state, "r1", event, signing_key=KEY)
        assert decision is not None
        walk.append((decision.node_id, shown(decision)))
    assert walk[0][0] == "a"
    assert walk[0][1]["a:tension"]["missing"] == "4"
    assert walk[0][1]["a:promotion"]["unlocked"] is False
    assert walk[1][0] == "b"
    assert walk[1][1]["b:tension"]["missing"] == "9"
    assert walk[2][0] == "a"
    assert walk[2][1]["a:promotion"]["unlocked"] is True
    assert walk[3][0] == "a"  # p1 is still in the basket: the shopper stays


def test_a_campaigns_product_list_is_written_a_bounded_number_of_times() -> None:
    """Ways into a campaign are written once (``anywhere``), not once per node: with many
    campaigns targeting thousands of products (the Complete Journey's do) a tree stays
    small enough to read in one Bigtable response."""
    many = [
        campaign(f"c{i}", targeted_product_ids=[f"c{i}-p{n}" for n in range(2_000)])
        for i in range(8)
    ]
    tree = compile_default_tree("r1", many, T0)
    data = tree.serialize().decode()
    for i in range(8):
        # its way in, its way out, its promotion and its tension cart: not 8 more copies
        assert data.count(f'"c{i}-p1999"') == 4, i
    assert {t.to for t in tree.anywhere} == {f"c{i}" for i in range(8)}
    assert len(tree.serialize()) < 8 * 2_000 * 12 * 4
