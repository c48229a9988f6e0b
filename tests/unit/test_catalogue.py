"""The catalogue's pure logic (paging, suggestions, the refusal's message) and the
campaign check's refusals of targets never seen at the campaign's retailers.

The SQL (search, ordering, scoping) runs on the BigQuery emulator:
tests/integration/test_catalogue.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.campaigns.admin import AdminError, create_campaign
from shared.campaigns.catalogue import (
    CatalogueQuery,
    NameHit,
    page_of,
    refusal_message,
    suggestions,
    unknown_among,
)
from shared.decisions.trees import ProductFilter
from tests.unit.test_live_campaigns import ADMIN, FORM, LATER, Memory, admin

# --- paging -----------------------------------------------------------------------------------


def hits(*names: str) -> list[NameHit]:
    return [NameHit(name=n, seen=1) for n in names]


def test_a_page_reads_one_row_more_than_it_shows_to_know_whether_another_follows() -> None:
    query = CatalogueQuery(page=3, per_page=10)
    assert (query.offset, query.limit) == (20, 11)
    assert (CatalogueQuery().page, CatalogueQuery().per_page, CatalogueQuery().offset) == (1, 20, 0)
    two = CatalogueQuery(page=2, per_page=2)
    full = page_of(hits("c", "d", "e"), two)  # the third row: the next page's first
    assert [h.name for h in full.items] == ["c", "d"]
    assert (full.page, full.per_page, full.has_next) == (2, 2, True)
    last = page_of(hits("c", "d"), two)
    assert [h.name for h in last.items] == ["c", "d"] and not last.has_next
    assert page_of(hits(), two).items == [] and not page_of(hits(), two).has_next


@pytest.mark.parametrize(
    "bad",
    [
        {"page": 0},
        {"per_page": 0},
        {"per_page": 51},
        {"page": 1001},
        {"text": "x" * 101},
        {"text": "milk", "sort": "name"},
    ],
)
def test_out_of_bounds_searches_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CatalogueQuery(**bad)


def test_the_search_text_is_trimmed() -> None:
    assert CatalogueQuery(text="  Kel ", per_page=50, page=1000).text == "Kel"


# --- known is the engine's match; suggestions are case-insensitive -----------------------------


def test_known_is_what_the_engine_would_match_exactly() -> None:
    seen = ["Kellogg's", "DAIRY"]
    wanted = ["Kellogg's", "kellogg's", "Kellogg's ", "DAIRY", "Dairy"]
    unknown = unknown_among(wanted, seen)
    assert unknown == ["Dairy", "Kellogg's ", "kellogg's"]
    # The refusal agrees with the engine: a name is refused iff a product that carries a
    # known name would not match a campaign on it.
    for name in wanted:
        brands = ProductFilter(brands=frozenset({name}))
        categories = ProductFilter(categories=frozenset({name}))
        matches_something = brands.matches("p", "Kellogg's", None) or categories.matches(
            "p", None, "DAIRY"
        )
        assert (name in unknown) == (not matches_something), name


def test_suggestions_are_the_nearest_known_names_case_insensitive_best_first() -> None:
    known = ["Danone", "Kellogg's", "Kellogg", "Nestlé"]
    # kelogs/kellogg's: kel+og+s = 6 of 6+9 letters, 2*6/15 = 0.8; kellogg: kel+og, 10/13.
    # Below difflib's 0.6: danone (1/6 of the pair), nestlé.
    assert suggestions(["Kelogs", "Zzz"], known) == {"Kelogs": ["Kellogg's", "Kellogg"], "Zzz": []}
    # Only its case differs: it is the nearest (1.0).
    assert suggestions(["kellogg's"], known)["kellogg's"][0] == "Kellogg's"
    # danone and dannon 10/11 (ties: difflib's order, by name descending), danino 8/11;
    # at most three.
    assert suggestions(["Danon"], ["Lactalis", "Danino", "Dannon", "Danone", "Danon Co"]) == {
        "Danon": ["Danone", "Dannon", "Danon Co"]
    }


def test_names_that_differ_only_by_case_are_all_suggested_and_never_the_name_itself() -> None:
    assert suggestions(["kellogg's"], ["KELLOGG'S", "kellogg's", "Kellogg's"]) == {
        "kellogg's": ["KELLOGG'S", "Kellogg's"]
    }


def test_only_the_first_twenty_unknown_names_get_suggestions() -> None:
    names = [f"brand-{i:02d}" for i in range(22)]
    found = suggestions(names, ["brand-00"])
    assert found["brand-01"] == ["brand-00"] and found["brand-19"] == ["brand-00"]
    assert found["brand-20"] == [] and found["brand-21"] == []
    assert set(found) == set(names)


def test_the_refusal_names_each_unknown_with_its_nearest_matches() -> None:
    assert (
        refusal_message("unknown brands", {"Zzz": [], "Kelogs": ["Kellogg's"]})
        == "unknown brands: Kelogs (did you mean Kellogg's?), Zzz"
    )
    assert (
        refusal_message("unknown brands", {"Danon": ["Danone", "Dannon"]})
        == "unknown brands: Danon (did you mean Danone or Dannon?)"
    )
    many: dict[str, list[str]] = {f"p{i:02d}": [] for i in range(22)}
    message = refusal_message("products never seen at these retailers", many)
    assert message.endswith("p18, p19 and 2 more") and "p20" not in message


# --- the campaign check -----------------------------------------------------------------------


class Seen(Memory):
    """The stores in memory, with a catalogue: the names seen at each retailer."""

    def __init__(self, **seen: dict[str, list[str]]) -> None:
        super().__init__()
        self.seen = seen  # kind (products, brands, categories) -> retailer -> names
        self.asked: list[str] = []

    def _unknown(
        self, kind: str, retailers: Sequence[str], wanted: Sequence[str]
    ) -> dict[str, list[str]]:
        self.asked.append(kind)
        known = sorted({n for r in retailers for n in self.seen.get(kind, {}).get(r, [])})
        unknown = unknown_among(wanted, known)
        return suggestions(unknown, known) if unknown else {}

    def unknown_products(self, *ids: Sequence[str]) -> dict[str, list[str]]:
        return self._unknown("products", *ids)

    def unknown_brands(self, *ids: Sequence[str]) -> dict[str, list[str]]:
        return self._unknown("brands", *ids)

    def unknown_categories(self, *ids: Sequence[str]) -> dict[str, list[str]]:
        return self._unknown("categories", *ids)


CATALOGUE = {
    "products": {"r1": ["p-a", "p-b"], "r2": ["p-z"]},
    "brands": {"r1": ["Kellogg's", "Danone"], "r2": ["Kelloggs"]},
    "categories": {"r1": ["CEREALS", "YOGURT"]},
}


def refused(store: Seen, **changes: Any) -> AdminError:
    with pytest.raises(AdminError) as caught:
        create_campaign(ADMIN, {**FORM, **changes}, admin(store), LATER)
    assert store.campaigns == {}, "a refused campaign is not saved"
    return caught.value


def test_a_misspelt_brand_is_refused_with_the_nearest_brands_of_its_retailers() -> None:
    error = refused(Seen(**CATALOGUE), targeted_brands=["Kelogs", "Danone"])
    assert (error.status, error.code) == (422, "unknown_brands")
    # Kelloggs is retailer r2's: never suggested for a campaign on r1.
    assert error.details == {"brands": ["Kelogs"], "suggestions": {"Kelogs": ["Kellogg's"]}}
    assert error.message == "unknown brands: Kelogs (did you mean Kellogg's?)"


def test_a_category_in_another_case_is_refused_and_its_spelling_suggested() -> None:
    error = refused(Seen(**CATALOGUE), targeted_categories=["Yogurt", "CEREALS"])
    assert (error.status, error.code) == (422, "unknown_categories")
    assert error.details == {"categories": ["Yogurt"], "suggestions": {"Yogurt": ["YOGURT"]}}
    assert error.message == "unknown categories: Yogurt (did you mean YOGURT?)"


def test_unknown_products_keep_their_code_and_gain_suggestions() -> None:
    error = refused(Seen(**CATALOGUE), targeted_product_ids=["p-a", "p-c", "nothing-like"])
    assert (error.status, error.code) == (422, "unknown_products")
    assert error.details == {
        "product_ids": ["nothing-like", "p-c"],
        # p-c/p-a and p-c/p-b: 2*2/6 each; ties come in difflib's order (name descending).
        "suggestions": {"nothing-like": [], "p-c": ["p-b", "p-a"]},
    }
    assert error.message == (
        "products never seen at these retailers: nothing-like, p-c (did you mean p-b or p-a?)"
    )


def test_known_targets_pass_and_only_the_targeted_kinds_are_asked() -> None:
    store = Seen(**CATALOGUE)
    created = create_campaign(
        ADMIN,
        {**FORM, "targeted_product_ids": [], "targeted_brands": ["Kellogg's"]},
        admin(store),
        LATER,
    )
    assert created.targeted_brands == ["Kellogg's"] and store.asked == ["brands"]
    store.asked.clear()
    both = {
        **FORM,
        "campaign_id": "later",
        "retailer_ids": ["r1", "r2"],  # known at one of them is enough
        "targeted_product_ids": ["p-z"],
        "targeted_brands": ["Kelloggs"],
        "targeted_categories": ["YOGURT"],
        "starts_at": (LATER + timedelta(days=30)).isoformat(),
        "ends_at": (LATER + timedelta(days=31)).isoformat(),
    }
    create_campaign(ADMIN, both, admin(store), LATER)
    assert store.asked == ["products", "brands", "categories"]
