"""The catalogue a campaign targets: products, brands and categories seen at retailers.

There is no product master data: a product, brand or category is *known* at a set of
retailers when a cold read model has seen it there (``sold_products``, ``basket_changes``,
``page_views``: sold, added to or removed from a basket, viewed). Brands come from the
basket and sales rows only (``page_views`` has no brand column); categories and products
from all three.

Known means what the decision engine would match: ``ProductFilter.matches``
(shared/decisions/trees.py) compares a targeted brand or category with the one a basket
event carries, exactly (case and spaces included). So ``kellogg's`` is unknown when the
shops send ``Kellogg's``: the campaign would match nothing. The suggestions, on the other
hand, are looked for case-insensitively, so ``Kellogg's`` is what it is told.

The port (``Catalogue``) serves two callers: the campaign check (shared/campaigns/admin.py,
``unknown_*``: a 422 naming the nearest known names) and the back office's pickers
(``search_*``: paged, scoped to the retailers a CSM sees). This module holds the port, its
models and the pure logic (paging, suggestions, the refusal's message); the BigQuery
adapter is ``bigquery_catalog.BigQueryCatalogue``.

Suggestions use the standard library's ``difflib.get_close_matches`` (Ratcliff/Obershelp
similarity): rapidfuzz is not a dependency, and the candidates are bounded (the names seen
at the retailers, ``MAX_CANDIDATES`` at most, most seen first) and only looked at when a
campaign is refused, so its speed would buy nothing worth a compiled dependency in the
function's image.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

MAX_PER_PAGE = 50
MAX_PAGE = 1000  # 50,000 rows deep at most: no picker goes there, and OFFSET stays small
MAX_TEXT = 100
MAX_SUGGESTIONS = 3
SUGGESTION_CUTOFF = 0.6  # difflib's default: below, a "match" is mostly noise
# Unknown names given suggestions (the first, sorted): the others are refused without any.
MAX_SUGGESTED_NAMES = 20
# Known names compared with each unknown one (the most seen at the retailers): difflib
# compares them one by one, so this bounds the time of a refusal.
MAX_CANDIDATES = 20_000
# Unknown names the refusal's message lists (the details list them all).
MAX_NAMES_IN_MESSAGE = 20


class CatalogueQuery(BaseModel):
    """A picker's search: ``text`` (case-insensitive substring; empty: everything), a
    1-based ``page`` of ``per_page`` items. Out-of-bounds values are refused
    (``ValidationError``: the route's 422)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    text: str = Field(default="", max_length=MAX_TEXT)
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    per_page: int = Field(default=20, ge=1, le=MAX_PER_PAGE)

    @property
    def offset(self) -> int:
        """The rows before the page."""
        return (self.page - 1) * self.per_page

    @property
    def limit(self) -> int:
        """The rows to read: one more than a page, to know whether a next page exists."""
        return self.per_page + 1


class ProductHit(BaseModel):
    """A product seen at the retailers: its brand and category as last seen (None when no
    row carried one), and how many read-model rows saw it there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: str
    brand: str | None = None
    category: str | None = None
    seen: int = Field(ge=1)


class NameHit(BaseModel):
    """A brand or a category seen at the retailers, and how many read-model rows saw it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    seen: int = Field(ge=1)


Hit = TypeVar("Hit", ProductHit, NameHit)


class CataloguePage(BaseModel, Generic[Hit]):
    """One page of a search: its items (at most ``per_page``), and whether there is more."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: list[Hit]
    page: int
    per_page: int
    has_next: bool


def page_of(rows: Sequence[Hit], query: CatalogueQuery) -> CataloguePage[Hit]:
    """The page of ``rows``, read with ``query.limit`` from ``query.offset``: one row more
    than a page means a next page."""
    return CataloguePage(
        items=list(rows[: query.per_page]),
        page=query.page,
        per_page=query.per_page,
        has_next=len(rows) > query.per_page,
    )


# --- suggestions ------------------------------------------------------------------------------


def suggestions(
    names: Iterable[str],
    candidates: Iterable[str],
    n: int = MAX_SUGGESTIONS,
    cutoff: float = SUGGESTION_CUTOFF,
) -> dict[str, list[str]]:
    """Each name -> the candidates nearest to it (at most ``n``, best first), compared
    case-insensitively: ``kelogs`` -> ``Kellogg's``. Candidates that differ only by case
    are all given (in the order given: most seen first), a name is never its own
    suggestion, and ``MAX_SUGGESTED_NAMES`` names (sorted) at most get any."""
    by_folded: dict[str, list[str]] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), []).append(candidate)
    folded = list(by_folded)
    found: dict[str, list[str]] = {}
    for rank, name in enumerate(sorted(set(names))):
        if rank >= MAX_SUGGESTED_NAMES:
            found[name] = []
            continue
        # n + 1: the name itself (another case of it being one) may be among the closest.
        close = difflib.get_close_matches(name.casefold(), folded, n=n + 1, cutoff=cutoff)
        found[name] = [c for key in close for c in by_folded[key] if c != name][:n]
    return found


def unknown_among(wanted: Iterable[str], known: Iterable[str]) -> list[str]:
    """The wanted names that are not known, exactly as the engine compares them; sorted."""
    return sorted(set(wanted) - set(known))


def refusal_message(label: str, unknown: Mapping[str, Sequence[str]]) -> str:
    """``unknown brands: Kelogs (did you mean Kellogg's?), Zzz``: the first names, sorted,
    each with its suggestions."""
    shown = sorted(unknown)
    parts = [
        f"{name} (did you mean {' or '.join(unknown[name])}?)" if unknown[name] else name
        for name in shown[:MAX_NAMES_IN_MESSAGE]
    ]
    more = len(shown) - MAX_NAMES_IN_MESSAGE
    return f"{label}: {', '.join(parts)}" + (f" and {more} more" if more > 0 else "")


# --- the port -------------------------------------------------------------------------------


class CatalogueChecks(Protocol):
    """What the campaign check asks: the names never seen at any of the retailers (the
    engine's exact match), each with its nearest known names (case-insensitive, at most
    ``MAX_SUGGESTIONS``, possibly none). Empty: all known."""

    def unknown_products(
        self, retailer_ids: Sequence[str], product_ids: Sequence[str]
    ) -> dict[str, list[str]]: ...

    def unknown_brands(
        self, retailer_ids: Sequence[str], brands: Sequence[str]
    ) -> dict[str, list[str]]: ...

    def unknown_categories(
        self, retailer_ids: Sequence[str], categories: Sequence[str]
    ) -> dict[str, list[str]]: ...


class CatalogueSearch(Protocol):
    """The back office's pickers: what was seen at any of ``retailer_ids`` (the caller
    passes retailers within the account's scope; none: an empty page) whose id or name
    holds ``query.text`` (case-insensitive). Ordered: those that start with the text
    first, then the most seen, then by id or name."""

    def search_products(
        self, retailer_ids: Sequence[str], query: CatalogueQuery
    ) -> CataloguePage[ProductHit]: ...

    def search_brands(
        self, retailer_ids: Sequence[str], query: CatalogueQuery
    ) -> CataloguePage[NameHit]: ...

    def search_categories(
        self, retailer_ids: Sequence[str], query: CatalogueQuery
    ) -> CataloguePage[NameHit]: ...


class Catalogue(CatalogueChecks, CatalogueSearch, Protocol):
    """The catalogue port: the campaign check's questions and the pickers' searches."""
