"""The tree engine: conditions, transitions, campaign rules, tension cart, play tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.contract.events import EventType, ShopperEvent, validate_event
from shared.decisions.engine import Decision, apply, decide, holds
from shared.decisions.play_tokens import InvalidTokenError, PlayGrant, sign, verify
from shared.decisions.trees import (
    BasketValue,
    CampaignRule,
    EventIs,
    ExperienceTree,
    GamifiedPromotion,
    InBasket,
    Node,
    PageIs,
    ProductAdded,
    ProductFilter,
    ProductRecommendation,
    SearchMatches,
    SessionElapsed,
    ShopperState,
    Shown,
    TensionCart,
    Transition,
    in_control_group,
)

KEY = b"k" * 32
T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)
PASTA = ProductFilter(product_ids=frozenset({"pasta-1"}))
SAUCE = ProductFilter(product_ids=frozenset({"sauce-1"}))


def ev(kind: str, at: int, session: str = "s1", **payload: Any) -> ShopperEvent:
    raw = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "shopper_id": "shopper-1",
        "session_id": session,
        "occurred_at": (T0 + timedelta(seconds=at)).isoformat(),
        "schema_version": 1,
        "payload": payload,
    }
    event = validate_event(raw)
    assert not isinstance(event, list), event
    return event


def add(product: str, quantity: int, price: str, at: int, brand: str = "B") -> ShopperEvent:
    return ev(
        "product_added_to_basket",
        at,
        product_id=product,
        quantity=quantity,
        unit_price=price,
        brand=brand,
    )


def remove(product: str, quantity: int, price: str, at: int) -> ShopperEvent:
    return ev(
        "product_removed_from_basket", at, product_id=product, quantity=quantity, unit_price=price
    )


def rule(**changes: Any) -> CampaignRule:
    defaults: dict[str, Any] = {
        "starts_at": T0 - timedelta(days=1),
        "ends_at": T0 + timedelta(days=1),
        "retailer_ids": frozenset({"r1"}),
    }
    return CampaignRule(**(defaults | changes))


def pasta_tree(**campaign: Any) -> ExperienceTree:
    return ExperienceTree(
        tree_version="v1",
        retailer_id="r1",
        shopper_id="shopper-1",
        compiled_at=T0 - timedelta(hours=1),
        valid_until=T0 + timedelta(days=1),
        root="root",
        nodes={
            "root": Node(
                transitions=(Transition(to="pasta", when=(ProductAdded(products=PASTA),)),)
            ),
            "pasta": Node(
                experiences=("reco-sauce", "tension"),
                transitions=(
                    Transition(to="root", when=(InBasket(products=PASTA, at_least=0, below=1),)),
                    Transition(to="pasta_sauce", when=(InBasket(products=SAUCE),)),
                ),
            ),
            "pasta_sauce": Node(
                experiences=("tension", "play"),
                transitions=(
                    Transition(
                        to="root",
                        when=(
                            EventIs(types=frozenset({EventType.PRODUCT_REMOVED_FROM_BASKET})),
                            InBasket(products=PASTA, at_least=0, below=1),
                        ),
                    ),
                ),
            ),
        },
        experiences={
            "reco-sauce": ProductRecommendation(
                experience_id="reco-sauce",
                campaign_id="c-sauce",
                product_id="sauce-1",
                because_of="pasta-1",
            ),
            "tension": TensionCart(
                experience_id="tension", threshold=Decimal(20), reward="free delivery"
            ),
            "play": GamifiedPromotion(
                experience_id="play",
                campaign_id="c-play",
                products=ProductFilter(brands=frozenset({"B"})),
                min_order_value=Decimal(5),
            ),
        },
        campaigns={"c-sauce": rule(**campaign), "c-play": rule()},
    )


def run(
    tree: ExperienceTree, events: list[ShopperEvent], state: ShopperState | None = None, **kw: Any
) -> tuple[ShopperState, list[Decision]]:
    state = state or ShopperState()
    decisions = []
    for event in events:
        state, decision = decide(tree, state, "r1", event, signing_key=KEY, **kw)
        assert decision is not None
        decisions.append(decision)
    return state, decisions


def shown(decision: Decision) -> dict[str, dict[str, Any]]:
    return {s.experience_id: s.details for s in decision.shown}


def test_the_pasta_and_sauce_session_moves_along_the_tree() -> None:
    tree = pasta_tree()
    cart = ev(
        "cart_validated",
        50,
        order_id="o-1",
        total="6.00",
        lines=[
            {"product_id": "pasta-1", "quantity": 2, "unit_price": "1.50", "brand": "B"},
            {"product_id": "sauce-1", "quantity": 1, "unit_price": "3.00", "brand": "B"},
        ],
    )
    steps = [
        add("pasta-1", 2, "1.50", 10),
        remove("pasta-1", 2, "1.50", 20),
        add("pasta-1", 2, "1.50", 30),
        add("sauce-1", 1, "3.00", 40),
        cart,
    ]
    state, decisions = run(tree, steps)
    assert [d.node_id for d in decisions] == [
        "pasta",
        "root",
        "pasta",
        "pasta_sauce",
        "pasta_sauce",
    ]
    first = shown(decisions[0])
    assert first["reco-sauce"] == {"product_id": "sauce-1", "because_of": "pasta-1"}
    assert first["tension"]["missing"] == "17"
    assert shown(decisions[1]) == {}
    assert shown(decisions[3])["tension"]["missing"] == "14"
    assert "play" not in shown(decisions[3])  # the invitation comes with the validated cart
    final = shown(decisions[4])
    assert final["tension"]["missing"] == "20"  # the basket was cleared by the order
    grant = verify(final["play"]["play_token"], KEY, T0 + timedelta(minutes=5))
    assert (grant.order_id, grant.campaign_id, grant.shopper_id) == ("o-1", "c-play", "shopper-1")
    assert state.basket == {}

    again, nothing = decide(tree, state, "r1", steps[3], signing_key=KEY)
    assert (again, nothing) == (state, None)  # a redelivery changes nothing


def test_a_small_order_gets_no_invitation() -> None:
    cart = ev(
        "cart_validated",
        50,
        order_id="o-2",
        total="4.00",
        lines=[{"product_id": "pasta-1", "quantity": 1, "unit_price": "4.00", "brand": "X"}],
    )
    _, decisions = run(
        pasta_tree(), [add("pasta-1", 1, "4.00", 1), add("sauce-1", 1, "1", 2), cart]
    )
    assert "play" not in shown(decisions[-1])


def test_out_of_order_events_and_late_adds_do_not_corrupt_the_basket() -> None:
    later_remove = remove("pasta-1", 1, "1.50", 20)
    earlier_add = add("pasta-1", 1, "1.50", 10)
    state = apply(apply(ShopperState(), later_remove), earlier_add)
    assert state.basket["pasta-1"].quantity == 0
    cart = ev(
        "cart_validated",
        30,
        order_id="o",
        total="1",
        lines=[{"product_id": "x", "quantity": 1, "unit_price": "1"}],
    )
    state = apply(apply(ShopperState(), cart), add("pasta-1", 1, "1.50", 25))
    assert state.basket == {}  # an add older than the order it was part of


@pytest.mark.parametrize(
    ("condition", "event", "expected"),
    [
        (EventIs(types=frozenset({EventType.PAGE_VIEWED})), "page", True),
        (EventIs(types=frozenset({EventType.SEARCH_PERFORMED})), "page", False),
        (PageIs(page_types=frozenset({"checkout"})), "page", True),
        (PageIs(page_types=frozenset({"home"})), "page", False),
        (SearchMatches(terms=frozenset({"Sauce"})), "search", True),
        (SearchMatches(terms=frozenset({"rice"})), "search", False),
        (ProductAdded(products=ProductFilter(categories=frozenset({"PASTA"}))), "add", True),
        (ProductAdded(products=SAUCE), "add", False),
        (InBasket(products=PASTA, at_least=3), "page", True),
        (InBasket(products=PASTA, at_least=4), "page", False),
        (InBasket(products=PASTA, at_least=1, below=3), "page", False),
        (BasketValue(at_least=Decimal("4.5")), "page", True),
        (BasketValue(products=SAUCE, at_least=Decimal("0.01")), "page", False),
        (BasketValue(below=Decimal("4.5")), "page", False),
        (SessionElapsed(at_least_s=60), "page", True),
        (SessionElapsed(at_least_s=61), "page", False),
        (Shown(experience_id="x", times=2), "page", True),
        (Shown(experience_id="x", times=2, negate=True), "page", False),
        (Shown(experience_id="y"), "page", False),
    ],
)
def test_every_condition(condition: Any, event: str, expected: bool) -> None:
    state = ShopperState(
        session_id="s1",
        session_started_at=T0,
        basket=apply(ShopperState(), add("pasta-1", 3, "1.50", 0)).basket,
        impressions={"x": 2},
    )
    events = {
        "page": ev("page_viewed", 60, url="/checkout", page_type="checkout"),
        "search": ev("search_performed", 60, query="tomato sauce", result_count=3),
        "add": ev(
            "product_added_to_basket",
            60,
            product_id="penne",
            quantity=1,
            unit_price="2",
            category="PASTA",
        ),
    }
    assert holds(condition, events[event], state) is expected


def test_frequency_caps_count_impressions_per_session() -> None:
    tree = pasta_tree(max_per_session=2)
    displayed = [
        ev("experience_displayed", 11 + n, experience_id="reco-sauce", campaign_id="c-sauce")
        for n in range(2)
    ]
    state, decisions = run(tree, [add("pasta-1", 1, "1.50", 10), *displayed])
    assert "reco-sauce" in shown(decisions[1])
    assert [w.reason for w in decisions[2].withheld] == ["frequency_cap"]
    _, [next_session] = run(tree, [ev("page_viewed", 99, "s2", url="/", page_type="home")], state)
    assert "reco-sauce" in shown(next_session)  # a new session, a new allowance


def test_period_retailer_budget_and_control_group_withhold_with_their_reason() -> None:
    adding = [add("pasta-1", 1, "1.50", 10)]
    cases = {
        "outside_period": pasta_tree(starts_at=T0 + timedelta(hours=1)),
        "other_retailer": pasta_tree(retailer_ids=frozenset({"r2"})),
        "held_out": pasta_tree(control_share=0.999999),
    }
    for reason, tree in cases.items():
        _, [decision] = run(tree, adding)
        assert [(w.experience_id, w.reason) for w in decision.withheld] == [("reco-sauce", reason)]
        assert "tension" in shown(decision)  # not a campaign's: always shown
    _, [decision] = run(pasta_tree(), adding, exhausted_campaigns=frozenset({"c-sauce"}))
    assert decision.withheld[0].reason == "budget_exhausted"


def test_the_control_group_is_deterministic_and_sized_by_its_share() -> None:
    shoppers = [f"s{n}" for n in range(4000)]
    held = [in_control_group("c1", "r1", s, 0.1) for s in shoppers]
    assert held == [in_control_group("c1", "r1", s, 0.1) for s in shoppers]
    assert 300 < sum(held) < 500
    assert held != [in_control_group("c2", "r1", s, 0.1) for s in shoppers]
    assert not any(in_control_group("c1", "r1", s, 0.0) for s in shoppers)


def test_tension_cart_counts_only_its_products() -> None:
    tree = pasta_tree().model_copy(
        update={
            "experiences": {
                **pasta_tree().experiences,
                "tension": TensionCart(
                    experience_id="tension",
                    products=ProductFilter(brands=frozenset({"B"})),
                    threshold=Decimal("10"),
                    reward="a gift",
                ),
            }
        }
    )
    _, decisions = run(tree, [add("pasta-1", 2, "1.25", 1), add("other", 5, "9.99", 2, brand="Z")])
    assert shown(decisions[-1])["tension"]["missing"] == "7.5"
    _, decisions = run(tree, [add("pasta-1", 9, "1.25", 1)])
    assert shown(decisions[-1])["tension"] | {} == {
        "threshold": "10",
        "basket_value": "11.25",
        "missing": "0",
        "reward": "a gift",
        "unlocked": True,
    }


def test_play_tokens_refuse_tampering_other_keys_and_expiry() -> None:
    grant = PlayGrant(
        retailer_id="r1",
        shopper_id="s1",
        order_id="o-1",
        campaign_id="c",
        experience_id="play",
        expires_at=T0 + timedelta(days=7),
    )
    token = sign(grant, KEY)
    assert verify(token, KEY, T0) == grant
    payload, signature = token.split(".")
    forged = sign(grant.model_copy(update={"order_id": "o-2"}), KEY).split(".")[0]
    for bad in (f"{forged}.{signature}", f"{payload}.{signature[:-2]}AA", "nonsense", "a.b.c"):
        with pytest.raises(InvalidTokenError):
            verify(bad, KEY, T0)
    with pytest.raises(InvalidTokenError):
        verify(token, b"another key", T0)
    with pytest.raises(InvalidTokenError, match="expired"):
        verify(token, KEY, T0 + timedelta(days=8))


def test_trees_are_checked_and_round_trip_compactly() -> None:
    tree = pasta_tree()
    assert ExperienceTree.deserialize(tree.serialize()) == tree
    assert len(tree.serialize()) < 2000
    with pytest.raises(ValueError, match="no such node"):
        ExperienceTree.model_validate(
            {
                **tree.model_dump(),
                "nodes": {
                    "root": {
                        "transitions": [
                            {
                                "to": "nowhere",
                                "when": [{"kind": "event_is", "types": ["page_viewed"]}],
                            }
                        ]
                    }
                },
            }
        )
    assert tree.is_stale(T0 + timedelta(days=2)) and not tree.is_stale(T0)
