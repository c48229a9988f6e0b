"""Campaign changes live in seconds: the change published, default trees recompiled, and
personal trees seen through the default tree (stopped campaigns withheld, new ones grafted)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.campaigns.admin import (
    AdminDependencies,
    AdminError,
    AuditRecord,
    CsmAccount,
    change_status,
    create_campaign,
    hash_key,
    update_campaign,
)
from shared.campaigns.catalogue import CataloguePage, CatalogueQuery, NameHit, ProductHit, page_of
from shared.campaigns.model import Campaign, CampaignChange
from shared.contract.messages import InboundMessage
from shared.decisions.compiler import (
    PersonalRules,
    compile_default_tree,
    compile_personal_tree,
)
from shared.decisions.engine import Decision, decide
from shared.decisions.recompile import recompile_default_trees
from shared.decisions.service import DecideDependencies, StateUpdate, decide_batch
from shared.decisions.trees import CampaignCreative, ExperienceTree, ShopperState, live_view
from shared.platform.errors import StoreUnavailableError
from shared.privacy_marks.marks import OpenGate
from tests.unit.test_decisions import KEY, T0, add, ev
from tests.unit.test_personal_trees import scores
from tests.unit.test_tree_compiler import campaign

NIGHT = T0 - timedelta(hours=8)  # the personal trees' compilation
LATER = T0 - timedelta(hours=1)  # a CSM's change during the day


def personal_tree(*campaigns: Campaign) -> ExperienceTree:
    return compile_personal_tree(
        "r1",
        "shopper-1",
        scores=scores("p-a", "p-b", "p-c"),
        complements={},
        profile=None,
        campaigns=campaigns,
        now=NIGHT,
        run_id="run-1",
        rules=PersonalRules(),
    )


def a(**changes: Any) -> Campaign:
    return campaign("a", targeted_brands=[], targeted_product_ids=["p-a"], **changes)


def b(**changes: Any) -> Campaign:
    return campaign("b", targeted_brands=[], targeted_product_ids=["p-b"], **changes)


def test_a_campaign_paused_since_the_night_is_withheld_as_stopped() -> None:
    tree = personal_tree(a())
    assert "a" in tree.campaigns
    default = compile_default_tree("r1", [a(status="paused")], LATER)
    view = live_view(tree, default)
    assert view.stopped == frozenset({"a"})
    assert view.tree is tree  # nothing to graft
    _, decision = decide(
        view.tree, ShopperState(), "r1", add("p-a", 1, "20", 0), signing_key=KEY,
        stopped_campaigns=view.stopped,
    )  # fmt: skip
    assert decision is not None
    assert not decision.shown
    assert {w.reason for w in decision.withheld} == {"campaign_stopped"}


def test_a_campaign_activated_after_the_night_is_grafted_from_the_default_tree() -> None:
    tree = personal_tree(a())
    default = compile_default_tree("r1", [a(), b(activated_at=LATER)], LATER)
    view = live_view(tree, default)
    assert view.stopped == frozenset()
    assert set(view.tree.campaigns) == {"a", "b"}
    assert view.tree.tree_version != tree.tree_version  # the shopper starts at its root
    _, decision = decide(view.tree, ShopperState(), "r1", add("p-b", 1, "20", 0), signing_key=KEY)
    assert decision is not None
    assert [s.campaign_id for s in decision.shown] == ["b", "b"]  # promotion, tension cart
    # The shopper's own campaign still leads where the night compiled it.
    _, decision = decide(view.tree, ShopperState(), "r1", add("p-a", 1, "20", 0), signing_key=KEY)
    assert decision is not None
    assert {s.campaign_id for s in decision.shown} == {"a"}


def test_a_campaign_the_night_knew_and_did_not_choose_is_not_grafted() -> None:
    # Live before the night, targeting products this shopper is not expected to buy.
    other = campaign("c", targeted_brands=[], targeted_product_ids=["p-z"], activated_at=NIGHT)
    tree = personal_tree(a(), other)
    assert "c" not in tree.campaigns
    default = compile_default_tree("r1", [a(), other], LATER)
    view = live_view(tree, default)
    assert view.tree is tree and view.stopped == frozenset()


def test_without_a_default_tree_and_for_the_default_tree_itself_nothing_changes() -> None:
    tree = personal_tree(a())
    assert live_view(tree, None).tree is tree
    default = compile_default_tree("r1", [a(), b(activated_at=LATER)], LATER)
    assert live_view(default, default).tree is default
    assert live_view(default, default).stopped == frozenset()


# --- the decision service, with in-memory stores -------------------------------------------


class Stores:
    def __init__(self, personal: ExperienceTree, default: ExperienceTree | None) -> None:
        self._personal = personal
        self._default = default
        self.published: list[Decision] = []

    def read(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ShopperState]:
        return {}

    def write(self, updates: Sequence[StateUpdate]) -> None:
        pass

    def personal(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ExperienceTree]:
        return {k: self._personal for k in keys}

    def default(self, retailer_id: str) -> ExperienceTree | None:
        return self._default

    def publish(self, decisions: Sequence[Decision]) -> None:
        self.published.extend(decisions)

    def exhausted(self) -> frozenset[str]:
        return frozenset()


def message(event: Any) -> InboundMessage:
    body = {
        "retailer_id": "r1",
        "ingested_at": T0.isoformat(),
        "event": json.loads(event.model_dump_json()),
    }
    return InboundMessage(message_id=event.event_id, data=json.dumps(body).encode())


def test_the_decider_sees_personal_trees_through_the_current_default_tree() -> None:
    tree = personal_tree(a())
    default = compile_default_tree("r1", [a(status="paused"), b(activated_at=LATER)], LATER)
    stores = Stores(tree, default)
    deps = DecideDependencies(
        states=stores,
        trees=stores,
        publisher=stores,
        budgets=stores,
        signing_key=KEY,
        privacy=OpenGate(),
    )
    outcome = decide_batch(
        [message(add("p-a", 1, "20", 0)), message(add("p-b", 1, "20", 1))], deps, now=T0
    )
    assert outcome.decisions == 2
    first, second = stores.published
    assert not first.shown and {w.reason for w in first.withheld} == {"campaign_stopped"}
    assert {s.campaign_id for s in second.shown} == {"b"}
    assert second.personal_tree


# --- recompilation on change ------------------------------------------------------------------


class Active:
    def __init__(self, campaigns: list[Campaign]) -> None:
        self.campaigns = campaigns
        self.reads = 0

    def active(self) -> list[Campaign]:
        self.reads += 1
        return [c for c in self.campaigns if c.status == "active"]


class Trees:
    def __init__(self) -> None:
        self.written: dict[str, ExperienceTree] = {}

    def put(self, trees: Sequence[ExperienceTree]) -> None:
        self.written |= {t.retailer_id: t for t in trees}


def change(campaign_id: str, retailers: list[str], status: str = "active") -> InboundMessage:
    body = CampaignChange(
        campaign_id=campaign_id,
        action="update",
        retailer_ids=retailers,
        status=status,
        changed_at=LATER,
    )
    return InboundMessage(message_id=campaign_id, data=body.model_dump_json().encode())


def test_a_burst_of_changes_recompiles_each_touched_retailer_once_from_one_read() -> None:
    # Campaign a moved from r1 to r2: r1 is left with none, r2 gets it.
    store = Active([a(retailer_ids=["r2"]), b(retailer_ids=["r3"])])
    trees = Trees()
    bad = InboundMessage(message_id="x", data=b'{"campaign_id": "a"}')
    outcome = recompile_default_trees(
        [change("a", ["r1", "r2"]), change("a", ["r2"]), bad], campaigns=store, trees=trees,
        now=T0,
    )  # fmt: skip
    assert store.reads == 1
    assert sorted(trees.written) == ["r1", "r2"]
    assert trees.written["r1"].campaigns == {}
    assert set(trees.written["r2"].campaigns) == {"a"}
    assert [p.message_id for p in outcome.poison] == ["x"]
    assert "not a campaign change" in outcome.poison[0].reason
    assert "action" in outcome.poison[0].reason
    # Redelivered: the same trees.
    versions = {r: t.tree_version for r, t in trees.written.items()}
    recompile_default_trees([change("a", ["r1", "r2"])], campaigns=store, trees=trees, now=T0)
    assert {r: t.tree_version for r, t in trees.written.items()} == versions


# --- the campaigns service publishes every saved change ----------------------------------------


class Memory:
    def __init__(self) -> None:
        self.campaigns: dict[str, Campaign] = {}
        self.records: list[AuditRecord] = []
        self.changes: list[CampaignChange] = []
        self.failing = False

    def put(self, campaign: Campaign) -> None:
        self.campaigns[campaign.campaign_id] = campaign

    def get(self, campaign_id: str) -> Campaign | None:
        return self.campaigns.get(campaign_id)

    def all(self) -> list[Campaign]:
        return list(self.campaigns.values())

    def competing(self, candidate: Campaign) -> list[Campaign]:
        return [
            c for c in self.campaigns.values() if set(c.retailer_ids) & set(candidate.retailer_ids)
        ]

    def append(self, record: AuditRecord) -> None:
        self.records.append(record)

    def of_campaign(self, campaign_id: str) -> list[AuditRecord]:
        return [r for r in self.records if r.campaign_id == campaign_id]

    def unknown(self, *ids: Sequence[str]) -> set[str]:
        return set()

    # The catalogue: every target is known, and the pickers find nothing.
    def unknown_products(self, *ids: Sequence[str]) -> dict[str, list[str]]:
        return {}

    unknown_brands = unknown_categories = unknown_products

    def search_products(self, _: Sequence[str], query: CatalogueQuery) -> CataloguePage[ProductHit]:
        return page_of(list[ProductHit](), query)

    def search_brands(self, _: Sequence[str], query: CatalogueQuery) -> CataloguePage[NameHit]:
        return page_of(list[NameHit](), query)

    search_categories = search_brands

    def published(self, change: CampaignChange) -> None:
        if self.failing:
            raise StoreUnavailableError("pubsub campaign-changes: unavailable")
        self.changes.append(change)


@pytest.fixture
def memory() -> Memory:
    return Memory()


def admin(memory: Memory) -> AdminDependencies:
    return AdminDependencies(
        accounts=None,  # type: ignore[arg-type]
        campaigns=memory,
        audit=memory,
        retailers=memory,
        products=memory,
        changes=memory,
    )


ADMIN = CsmAccount(key_hash=hash_key("k"), csm_id="csm-1", role="admin", created_at=NIGHT)
FORM = {
    "campaign_id": "spring",
    "name": "Spring",
    "retailer_ids": ["r1"],
    "experience_type": "personalized_promotion",
    "starts_at": T0.isoformat(),
    "ends_at": (T0 + timedelta(days=5)).isoformat(),
    "targeted_product_ids": ["p-a"],
}


def test_every_saved_change_is_published_with_the_retailers_before_and_after(
    memory: Memory,
) -> None:
    deps = admin(memory)
    created = create_campaign(ADMIN, {**FORM, "status": "active"}, deps, LATER)
    assert created.activated_at == LATER
    update_campaign(ADMIN, "spring", {"retailer_ids": ["r2"]}, deps, LATER + timedelta(seconds=1))
    paused = change_status(ADMIN, "spring", "pause", deps, LATER + timedelta(seconds=2))
    assert paused.activated_at == LATER  # pausing keeps when it last became active
    again = change_status(ADMIN, "spring", "activate", deps, LATER + timedelta(seconds=3))
    assert again.activated_at == LATER + timedelta(seconds=3)
    assert [(c.action, c.retailer_ids, c.status) for c in memory.changes] == [
        ("create", ["r1"], "active"),
        ("update", ["r1", "r2"], "active"),  # r1 must lose it, r2 gain it
        ("pause", ["r2"], "paused"),
        ("activate", ["r2"], "active"),
    ]
    draft = create_campaign(ADMIN, {**FORM, "campaign_id": "draft"}, deps, LATER)
    assert draft.activated_at is None


def test_a_change_that_cannot_be_announced_is_saved_and_said_so(memory: Memory) -> None:
    deps = admin(memory)
    create_campaign(ADMIN, {**FORM, "status": "active"}, deps, LATER)
    memory.failing = True
    with pytest.raises(AdminError) as refused:
        change_status(ADMIN, "spring", "pause", deps, LATER)
    assert (refused.value.status, refused.value.code) == (503, "change_not_propagated")
    assert "saved" in refused.value.message
    assert memory.campaigns["spring"].status == "paused"  # saved, and audited
    assert [r.action for r in memory.records] == ["create", "pause"]


# --- a game's invitation, wherever the shopper is in the tree --------------------------------


def game(**changes: Any) -> Campaign:
    return campaign(
        "g",
        experience_type="gamified_promotion",
        targeted_brands=["brand-g"],
        threshold=Decimal(2),
        win_probability=0.3,
        prize_value=Decimal(10),
        budget=Decimal(100),
        **changes,
    )


def cart(*lines: tuple[str, str, str]) -> Any:
    return ev(
        "cart_validated",
        90,
        order_id="o-1",
        total="9.00",
        lines=[
            {"product_id": p, "quantity": 1, "unit_price": price, "brand": brand}
            for p, price, brand in lines
        ],
    )


def invited(tree: ExperienceTree, *events: Any) -> bool:
    state = ShopperState()
    decision = None
    for event in events:
        state, decision = decide(tree, state, "r1", event, signing_key=KEY)
    assert decision is not None
    return any(s.type == "gamified_promotion" for s in decision.shown)


def test_a_qualifying_order_is_invited_from_any_node_and_only_a_qualifying_one() -> None:
    tree = compile_default_tree("r1", [game(), b()], LATER)
    # The game's product, then another campaign's: the shopper is at b's node.
    steps = (add("g-1", 1, "3.00", 0, brand="brand-g"), add("p-b", 1, "2.00", 10))
    assert invited(tree, *steps, cart(("g-1", "3.00", "brand-g"), ("p-b", "2.00", "B")))
    # From the root too (nothing added through the tracker), and never below the minimum.
    assert invited(tree, cart(("g-1", "3.00", "brand-g")))
    assert not invited(tree, *steps, cart(("g-1", "1.00", "brand-g"), ("p-b", "8.00", "B")))
    # Nothing but an order invites.
    assert not invited(tree, *steps)


def test_a_game_activated_after_the_night_invites_on_the_personal_tree() -> None:
    tree = personal_tree(a())
    default = compile_default_tree("r1", [a(), game(activated_at=LATER)], LATER)
    view = live_view(tree, default)
    assert view.tree.everywhere == ("g:play",)
    steps = (add("p-a", 1, "20", 0), cart(("g-1", "3.00", "brand-g"), ("p-a", "20", "B")))
    assert invited(view.tree, *steps)
    assert not invited(tree, *steps)


# --- creatives: from the live default tree, on every tree -------------------------------------

PASTA_WEEK = {"title": "Pasta week", "text": "Our best pasta", "image_url": "https://x.test/a.png"}


def test_the_default_tree_holds_the_creatives_and_personal_trees_do_not() -> None:
    default = compile_default_tree("r1", [a(creative=PASTA_WEEK), b()], LATER)
    assert default.campaigns["a"].creative == CampaignCreative(**PASTA_WEEK)
    assert default.campaigns["b"].creative is None
    assert default.creatives() == {"a": CampaignCreative(**PASTA_WEEK)}
    assert ExperienceTree.deserialize(default.serialize()) == default
    assert b'"creative"' not in compile_default_tree("r1", [b()], LATER).serialize()
    tree = personal_tree(a(creative=PASTA_WEEK), b(creative=PASTA_WEEK))
    assert set(tree.campaigns) == {"a", "b"}
    assert tree.creatives() == {}
    assert b"Pasta week" not in tree.serialize()  # millions of them: not one byte more


def test_a_personal_tree_shows_the_creative_of_the_live_default_tree_and_its_edits() -> None:
    # The night compiled the personal tree; the CSM edits the creative twice since.
    tree = personal_tree(a(creative={"title": "Last night's"}), b())
    store = Active([a(creative=PASTA_WEEK), b()])
    written = Trees()
    recompile_default_trees([change("a", ["r1"])], campaigns=store, trees=written, now=LATER)
    stores = Stores(tree, written.written["r1"])
    deps = DecideDependencies(
        states=stores,
        trees=stores,
        publisher=stores,
        budgets=stores,
        signing_key=KEY,
        privacy=OpenGate(),
    )
    home = ev("page_viewed", 0, page_type="home", url="https://shop.test/")
    decide_batch([message(home), message(add("p-a", 1, "20", 1))], deps, now=T0)
    at_root, on_a = stores.published
    # The shopper's usual products: no campaign, no creative.
    assert at_root.shown and all(s.campaign_id is None for s in at_root.shown)
    assert not [s for s in at_root.shown if "creative" in s.details]
    assert on_a.personal_tree
    assert [(s.campaign_id, s.details["creative"]) for s in on_a.shown] == [("a", PASTA_WEEK)] * 2
    assert {"generosity_pct", "threshold", "unlocked"} <= set(on_a.shown[0].details)  # as before

    edited = {"title": "Pasta week, 2nd edition", "text": "", "image_url": None}
    store.campaigns = [a(creative=edited), b()]
    recompile_default_trees([change("a", ["r1"])], campaigns=store, trees=written, now=T0)
    stores._default = written.written["r1"]
    decide_batch([message(add("p-a", 1, "20", 2))], deps, now=T0)
    assert [s.details["creative"] for s in stores.published[-1].shown] == [edited] * 2
    # Campaign b has no creative: its experiences have none.
    decide_batch([message(add("p-b", 1, "20", 3))], deps, now=T0)
    on_b = stores.published[-1]
    assert {s.campaign_id for s in on_b.shown} == {"b"}
    assert not [s for s in on_b.shown if "creative" in s.details]


def test_without_a_live_default_tree_no_creative_is_shown() -> None:
    tree = personal_tree(a(creative=PASTA_WEEK))
    stale = compile_default_tree("r1", [a(creative=PASTA_WEEK)], LATER, validity=timedelta(0))
    for default in (None, stale):
        stores = Stores(tree, default)
        deps = DecideDependencies(
            states=stores,
            trees=stores,
            publisher=stores,
            budgets=stores,
            signing_key=KEY,
            privacy=OpenGate(),
        )
        decide_batch([message(add("p-a", 1, "20", 0))], deps, now=T0)
        (decision,) = stores.published
        assert {s.campaign_id for s in decision.shown} == {"a"}
        assert not [s for s in decision.shown if "creative" in s.details]
    # The engine on its own: the creatives it is given, for the campaign's experiences.
    _, alone = decide(
        tree, ShopperState(), "r1", add("p-a", 1, "20", 0), signing_key=KEY,
        creatives={"a": CampaignCreative(title="T")},
    )  # fmt: skip
    assert alone is not None
    assert [s.details["creative"] for s in alone.shown] == [
        {"title": "T", "text": "", "image_url": None}
    ] * 2
