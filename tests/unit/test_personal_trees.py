"""Personal trees compiled from the nightly outputs, walked by the decision engine."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from shared.decisions.compiler import (
    Complement,
    PersonalRules,
    ScoredProduct,
    SpendProfile,
    basket_threshold,
    best_complements,
    compile_default_tree,
    compile_personal_tree,
    personal_generosity,
)
from shared.decisions.engine import decide
from shared.decisions.trees import (
    ExperienceTree,
    PersonalizedPromotion,
    ShopperState,
    first_applicable,
)
from tests.unit.test_decisions import KEY, T0, add, remove, shown
from tests.unit.test_tree_compiler import campaign

RULES = PersonalRules()


def profile(p50: str, p75: str, p90: str, baskets: int = 20) -> SpendProfile:
    return SpendProfile(
        baskets=baskets,
        value_p25=Decimal(p50) / 2,
        value_p50=Decimal(p50),
        value_p75=Decimal(p75),
        value_p90=Decimal(p90),
        visits_per_week=1.0,
    )


def scores(*products: str) -> list[ScoredProduct]:
    return [ScoredProduct(p, rank, 1.0 / rank) for rank, p in enumerate(products, start=1)]


COMPLEMENTS = {
    "pasta": [
        Complement("pasta", "sauce-a", lift=3.0, support=40),
        Complement("pasta", "sauce-b", lift=5.0, support=10),
        Complement("pasta", "parmesan", lift=1.1, support=90),  # below min_lift
    ],
    "milk": [Complement("milk", "milk", lift=9.0, support=5)],  # itself: never
}


def test_threshold_is_above_the_usual_basket_and_rounded_up() -> None:
    assert basket_threshold(profile("40", "55.20", "80"), RULES) == Decimal(56)  # the p75
    # A tight distribution: at least 15% above the median (40 x 1.15 = 46)...
    assert basket_threshold(profile("40", "42", "60"), RULES) == Decimal(46)
    # ... capped by the p90 only when the p90 is itself above that floor.
    assert basket_threshold(profile("40", "70", "50"), RULES) == Decimal(50)
    assert basket_threshold(profile("40", "41", "43"), RULES) == Decimal(46)
    assert basket_threshold(profile("40", "55", "80", baskets=2), RULES) is None
    assert basket_threshold(None, RULES) is None
    for p50, p75, p90 in [("12.5", "20", "31"), ("3", "3", "3"), ("100", "101", "300")]:
        found = basket_threshold(profile(p50, p75, p90), RULES)
        assert found is not None and found > Decimal(p50)


def test_generosity_is_bounded_by_the_campaign_and_lower_for_habitual_buyers() -> None:
    promo = campaign("a", targeted_product_ids=["pasta"], generosity_pct=Decimal(20))
    assert personal_generosity(promo, scores("milk", "bread"), RULES) == Decimal(20)
    assert personal_generosity(promo, scores("milk", "pasta"), RULES) == Decimal(10)
    far = [ScoredProduct("pasta", 40, 0.01)]
    assert personal_generosity(promo, far, RULES) == Decimal(20)  # not expected: full
    tiny = campaign("b", targeted_product_ids=["pasta"], generosity_pct=Decimal("0.1"))
    assert personal_generosity(tiny, scores("pasta"), RULES) == Decimal("0.1")


def test_the_complement_the_shopper_buys_wins_over_a_higher_lift() -> None:
    assert best_complements(scores("pasta", "sauce-a"), COMPLEMENTS, RULES) == [
        ("pasta", "sauce-a")
    ]
    assert best_complements(scores("pasta"), COMPLEMENTS, RULES) == [("pasta", "sauce-b")]
    assert best_complements(scores("milk", "bread"), COMPLEMENTS, RULES) == []


def personal(**changes: object) -> ExperienceTree:
    arguments: dict[str, object] = {
        "scores": scores("milk", "pasta", "sauce-a", "bread"),
        "complements": COMPLEMENTS,
        "profile": profile("20", "25", "40"),
        "campaigns": [
            campaign("promo", targeted_product_ids=["pasta"], generosity_pct=Decimal(20)),
            campaign("other", retailer_ids=["r2"]),
        ],
        "now": T0,
        "run_id": "run-1",
    }
    return compile_personal_tree("r1", "s1", **(arguments | changes))  # type: ignore[arg-type]


def test_a_personal_tree_holds_the_shoppers_own_parameters() -> None:
    tree = personal()
    assert tree.shopper_id == "s1" and tree.retailer_id == "r1"
    assert tree.tree_version.startswith("run-1:")
    assert (tree.compiled_at, tree.valid_until) == (T0, T0 + timedelta(days=2))
    assert set(tree.campaigns) == {"promo"}  # the retailer's live campaigns only
    assert tree.nodes["root"].experiences == (
        "usual:milk",
        "usual:pasta",
        "usual:sauce-a",
        "basket:tension",
    )
    assert set(tree.nodes) == {"root", "promo", "after:pasta"}
    promotion = tree.experiences["promo:promotion"]
    assert isinstance(promotion, PersonalizedPromotion)
    assert promotion.generosity_pct == Decimal(10)  # pasta is habitual
    assert ExperienceTree.deserialize(tree.serialize()) == tree
    assert personal().tree_version == tree.tree_version  # deterministic
    assert personal(scores=scores("bread")).tree_version != tree.tree_version
    no_profile = personal(profile=None)
    assert "basket:tension" not in no_profile.experiences


def test_adding_pasta_leads_to_the_sauce_and_removing_it_back_to_the_root() -> None:
    tree = personal(campaigns=[])
    state = ShopperState()
    state, first = decide(tree, state, "r1", add("bread", 1, "2.00", 10), signing_key=KEY)
    assert first is not None and first.personal_tree and first.node_id == "root"
    assert set(shown(first)) == {"usual:milk", "usual:pasta", "usual:sauce-a", "basket:tension"}
    assert shown(first)["basket:tension"]["missing"] == "23"  # the p75, 25, minus 2
    state, added = decide(tree, state, "r1", add("pasta", 2, "1.50", 20), signing_key=KEY)
    assert added is not None and added.node_id == "after:pasta"
    assert shown(added)["complement:sauce-a"] == {"product_id": "sauce-a", "because_of": "pasta"}
    assert shown(added)["basket:tension"]["missing"] == "20"
    state, sauce = decide(tree, state, "r1", add("sauce-a", 1, "3.00", 30), signing_key=KEY)
    assert sauce is not None and sauce.node_id == "after:pasta"
    assert "complement:sauce-a" not in shown(sauce)  # in the basket already: not shown
    state, gone = decide(tree, state, "r1", remove("pasta", 2, "1.50", 40), signing_key=KEY)
    assert gone is not None and gone.node_id == "root"


def test_the_same_events_decide_differently_on_the_personal_tree_than_on_the_default() -> None:
    campaigns = [campaign("promo", targeted_product_ids=["pasta"], generosity_pct=Decimal(20))]
    default = compile_default_tree("r1", campaigns, T0)
    tree = personal(campaigns=campaigns)
    event = add("pasta", 1, "1.50", 10)
    _, on_default = decide(default, ShopperState(), "r1", event, signing_key=KEY)
    _, on_personal = decide(tree, ShopperState(), "r1", event, signing_key=KEY)
    assert on_default is not None and on_personal is not None
    # The campaign node comes first on both; the personal one pays this habitual buyer less.
    assert on_default.node_id == on_personal.node_id == "promo"
    assert shown(on_default)["promo:promotion"]["generosity_pct"] == "20"
    assert shown(on_personal)["promo:promotion"]["generosity_pct"] == "10"
    assert not on_default.personal_tree and on_personal.personal_tree


def test_a_stale_personal_tree_falls_back_to_the_default() -> None:
    default = compile_default_tree("r1", [], T0 + timedelta(days=2))
    tree = personal()
    assert first_applicable([tree, default], T0 + timedelta(days=1)) is tree
    assert first_applicable([tree, default], T0 + timedelta(days=2, seconds=1)) is default


def test_a_personal_tree_keeps_the_campaigns_and_products_for_this_shopper() -> None:
    many = [f"other-{i}" for i in range(500)]
    tree = personal(
        campaigns=[
            campaign("promo", targeted_product_ids=["pasta", *many], generosity_pct=Decimal(20)),
            campaign("sauces", targeted_product_ids=["sauce-b", "sauce-a"]),  # a complement
            campaign("caviar", targeted_product_ids=["caviar"]),  # nothing for this shopper
            campaign("brand", targeted_product_ids=[], targeted_brands=["brand-x"]),
        ]
    )
    assert set(tree.campaigns) == {"promo", "sauces", "brand"}
    promotion = tree.experiences["promo:promotion"]
    assert isinstance(promotion, PersonalizedPromotion)
    assert promotion.products.product_ids == {"pasta"}  # not the 500 others
    sauces = tree.experiences["sauces:promotion"]
    assert isinstance(sauces, PersonalizedPromotion)
    assert sauces.products.product_ids == {"sauce-a"}
    brand = tree.experiences["brand:promotion"]
    assert isinstance(brand, PersonalizedPromotion)
    assert brand.products.brands == {"brand-x"}
    assert len(tree.serialize()) < 6000
    # Adding a targeted product the shopper was not expected to buy: no campaign node.
    _, decision = decide(tree, ShopperState(), "r1", add("other-7", 1, "1.00", 10), signing_key=KEY)
    assert decision is not None and decision.node_id == "root"


def test_products_new_to_the_shopper_are_recommended_at_the_root() -> None:
    # the first two new products, in rank order; one already shown as usual is skipped
    tree = personal(campaigns=[], new_products=["milk", "nappies", "wipes", "crayons"])
    _, first = decide(tree, ShopperState(), "r1", add("bread", 1, "2.00", 10), signing_key=KEY)
    assert first is not None and first.node_id == "root"
    assert set(shown(first)) == {
        "usual:milk",
        "usual:pasta",
        "usual:sauce-a",
        "new:nappies",
        "new:wipes",
        "basket:tension",
    }
    assert shown(first)["new:nappies"] == {"product_id": "nappies", "because_of": None}
    without = personal(campaigns=[])
    assert not any(e.startswith("new:") for e in without.experiences)
    assert tree.tree_version != without.tree_version  # the new products are in the version
