"""The catalogue on the BigQuery emulator: the pickers' searches (text, paging, order,
scoping to retailers), the unknown targets with their suggestions, and the campaigns
API's refusal of a misspelt brand (the function served by the stack).

Two retailers of the test's own: A sees the rows below, B one product of another brand
(seen ten times: it would top every list if it leaked into A's). Expected values are
counted by hand from these rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.campaigns.admin import issue_csm_key
from shared.campaigns.bigquery_catalog import BigQueryCatalogue
from shared.campaigns.catalogue import CataloguePage, CatalogueQuery, NameHit, ProductHit
from shared.campaigns.firestore_admin import FirestoreCsmAccounts
from shared.freezer.read_models import DATASET
from shared.platform import clients
from shared.system.resources import CREDENTIALS_DATABASE
from tests.integration.campaign_cleanup import campaigns_ending_with, remove

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
TIMEOUT = 60


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def common(retailer: str, at: str) -> dict[str, Any]:
    return {
        "row_id": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "retailer_id": retailer,
        "shopper_id": "s1",
        "session_id": None,
        "occurred_at": at,
        "ingested_at": at,
    }


def sold(retailer: str, product: str, brand: str, category: str, at: str) -> dict[str, Any]:
    return {
        **common(retailer, at),
        "order_id": f"o-{uuid.uuid4().hex[:8]}",
        "line_number": 0,
        "product_id": product,
        "brand": brand,
        "category": category,
        "quantity": 1,
        "unit_price": "2.50",
        "discount": "0",
        "amount": "2.50",
    }


def added(
    retailer: str, product: str, brand: str | None, category: str | None, at: str
) -> dict[str, Any]:
    return {
        **common(retailer, at),
        "product_id": product,
        "brand": brand,
        "category": category,
        "change": "added",
        "quantity": 1,
        "unit_price": "2.50",
        "amount": "2.50",
    }


def viewed(retailer: str, product: str | None, category: str | None, at: str) -> dict[str, Any]:
    return {
        **common(retailer, at),
        "url": "https://shop.test/p",
        "page_type": "product" if product else "category",
        "product_id": product,
        "category": category,
    }


def rows(a: str, b: str) -> dict[str, list[dict[str, Any]]]:
    """Retailer A, by product (rows: brand, category as last seen):

    - frozen-yog: 4 added (Häagen-Dazs, FROZEN) and 1 view, the latest (FROZEN DESSERTS);
    - cereal-001: 2 sold and 1 added (Kellogg's, CEREALS): 3;
    - yog-001: 1 sold, 1 added (Danone, YOGURT), then 1 added without brand or category,
      the latest: 3, still Danone and YOGURT;
    - Cereal-XL: 1 added (KELLOGG'S, CEREALS); cereal-002: 1 sold (Kellogg's, CEREALS);
      yog-002: 1 view (no brand, YOGURT);
    - and a category page: 1 view of DAIRY, no product.

    Retailer B: cereal-999, 10 sold (Kelloggs, BREAKFAST).
    """
    return {
        "sold_products": [
            sold(a, "cereal-001", "Kellogg's", "CEREALS", ago(3)),
            sold(a, "cereal-001", "Kellogg's", "CEREALS", ago(3)),
            sold(a, "cereal-002", "Kellogg's", "CEREALS", ago(2)),
            sold(a, "yog-001", "Danone", "YOGURT", ago(2)),
            *(sold(b, "cereal-999", "Kelloggs", "BREAKFAST", ago(1)) for _ in range(10)),
        ],
        "basket_changes": [
            added(a, "cereal-001", "Kellogg's", "CEREALS", ago(1)),
            added(a, "yog-001", "Danone", "YOGURT", ago(1)),
            added(a, "yog-001", None, None, ago(0.5)),
            added(a, "Cereal-XL", "KELLOGG'S", "CEREALS", ago(1)),
            *(added(a, "frozen-yog", "Häagen-Dazs", "FROZEN", ago(1)) for _ in range(4)),
        ],
        "page_views": [
            viewed(a, "frozen-yog", "FROZEN DESSERTS", ago(0.1)),
            viewed(a, "yog-002", "YOGURT", ago(1)),
            viewed(a, None, "DAIRY", ago(1)),
        ],
    }


@dataclass(frozen=True)
class Shops:
    a: str
    b: str
    suffix: str
    catalogue: BigQueryCatalogue
    url: str
    csm_a: str  # a CSM key scoped to retailer A


@pytest.fixture(scope="module")
def shops(stack: dict[str, str]) -> Iterator[Shops]:
    suffix = uuid.uuid4().hex[:8]
    a, b = f"cata-{suffix}", f"catb-{suffix}"
    project = stack["GOOGLE_CLOUD_PROJECT"]
    firestore = clients.firestore_client(project)
    for retailer in (a, b):
        firestore.collection("retailers").document(retailer).set({"name": retailer})
    bq = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    accounts = FirestoreCsmAccounts(clients.firestore_client(project, CREDENTIALS_DATABASE))
    key = issue_csm_key(accounts, f"csm-cat-{suffix}", "csm", [a], NOW)
    try:
        for table, table_rows in rows(a, b).items():
            errors = bq.insert_rows_json(f"{project}.{DATASET}.{table}", table_rows, timeout=60)
            assert errors == [], (table, errors)
        catalogue = BigQueryCatalogue(bq, project, DATASET)
        yield Shops(a, b, suffix, catalogue, stack["CAMPAIGNS_URL"], key)
    finally:
        remove(
            stack,
            campaign_ids=campaigns_ending_with(stack, suffix),
            keys=[key],
            retailers=(a, b),
        )


def products(page: CataloguePage[ProductHit]) -> list[tuple[str, str | None, str | None, int]]:
    return [(h.product_id, h.brand, h.category, h.seen) for h in page.items]


def names(page: CataloguePage[NameHit]) -> list[tuple[str, int]]:
    return [(h.name, h.seen) for h in page.items]


def test_products_are_searched_by_id_case_insensitive_with_brand_and_category(
    shops: Shops,
) -> None:
    everything = shops.catalogue.search_products([shops.a], CatalogueQuery(per_page=50))
    # The most seen first, then by id (bytes: upper case before lower case).
    assert products(everything) == [
        ("frozen-yog", "Häagen-Dazs", "FROZEN DESSERTS", 5),
        ("cereal-001", "Kellogg's", "CEREALS", 3),
        ("yog-001", "Danone", "YOGURT", 3),
        ("Cereal-XL", "KELLOGG'S", "CEREALS", 1),
        ("cereal-002", "Kellogg's", "CEREALS", 1),
        ("yog-002", None, "YOGURT", 1),
    ]
    assert not everything.has_next
    cereal = shops.catalogue.search_products([shops.a], CatalogueQuery(text="CEREAL"))
    assert [p[0] for p in products(cereal)] == ["cereal-001", "Cereal-XL", "cereal-002"]
    # Ids that start with the text before those that only hold it (frozen-yog, seen more).
    yog = shops.catalogue.search_products([shops.a], CatalogueQuery(text="yog"))
    assert [p[0] for p in products(yog)] == ["yog-001", "yog-002", "frozen-yog"]
    middle = shops.catalogue.search_products([shops.a], CatalogueQuery(text="real-0"))
    assert [p[0] for p in products(middle)] == ["cereal-001", "cereal-002"]
    assert products(shops.catalogue.search_products([shops.a], CatalogueQuery(text="%"))) == []


def test_pages_follow_each_other_and_say_whether_another_follows(shops: Shops) -> None:
    pages = [
        shops.catalogue.search_products([shops.a], CatalogueQuery(page=n, per_page=2))
        for n in (1, 2, 3, 4)
    ]
    assert [[p[0] for p in products(page)] for page in pages] == [
        ["frozen-yog", "cereal-001"],
        ["yog-001", "Cereal-XL"],
        ["cereal-002", "yog-002"],
        [],
    ]
    assert [page.has_next for page in pages] == [True, True, False, False]
    assert (pages[1].page, pages[1].per_page) == (2, 2)


def test_brands_and_categories_are_searched_with_how_often_seen(shops: Shops) -> None:
    brands = shops.catalogue.search_brands([shops.a], CatalogueQuery())
    # Kellogg's: 3 sold + 1 added; Häagen-Dazs: 4 added (ties: by name); the views carry
    # no brand.
    assert names(brands) == [("Häagen-Dazs", 4), ("Kellogg's", 4), ("Danone", 2), ("KELLOGG'S", 1)]
    kel = shops.catalogue.search_brands([shops.a], CatalogueQuery(text="kel"))
    assert names(kel) == [("Kellogg's", 4), ("KELLOGG'S", 1)]
    assert names(shops.catalogue.search_brands([shops.a], CatalogueQuery(text="HÄAGEN"))) == [
        ("Häagen-Dazs", 4)
    ]
    categories = shops.catalogue.search_categories([shops.a], CatalogueQuery())
    # CEREALS: 3 sold + 2 added; FROZEN: 4 added; YOGURT: sold, added, viewed; DAIRY and
    # FROZEN DESSERTS: one view each.
    assert names(categories) == [
        ("CEREALS", 5),
        ("FROZEN", 4),
        ("YOGURT", 3),
        ("DAIRY", 1),
        ("FROZEN DESSERTS", 1),
    ]
    first = shops.catalogue.search_categories([shops.a], CatalogueQuery(text="frozen", per_page=1))
    assert names(first) == [("FROZEN", 4)] and first.has_next


def test_a_retailer_never_sees_anothers_catalogue(shops: Shops) -> None:
    catalogue = shops.catalogue
    for query in (CatalogueQuery(), CatalogueQuery(text="999"), CatalogueQuery(text="kelloggs")):
        assert "cereal-999" not in [
            p[0] for p in products(catalogue.search_products([shops.a], query))
        ]
        assert "Kelloggs" not in [n for n, _ in names(catalogue.search_brands([shops.a], query))]
    assert "BREAKFAST" not in [
        n for n, _ in names(catalogue.search_categories([shops.a], CatalogueQuery()))
    ]
    assert products(catalogue.search_products([shops.b], CatalogueQuery())) == [
        ("cereal-999", "Kelloggs", "BREAKFAST", 10)
    ]
    both = catalogue.search_products([shops.a, shops.b], CatalogueQuery(per_page=1))
    assert products(both) == [("cereal-999", "Kelloggs", "BREAKFAST", 10)] and both.has_next
    assert products(catalogue.search_products([], CatalogueQuery())) == []
    # Retailer B's brand is unknown at A, and only A's brands are suggested.
    assert catalogue.unknown_brands([shops.a], ["Kelloggs"]) == {
        "Kelloggs": ["Kellogg's", "KELLOGG'S"]
    }
    assert catalogue.unknown_brands([shops.a, shops.b], ["Kelloggs"]) == {}


def test_unknown_targets_are_the_engines_exact_match_with_suggestions(shops: Shops) -> None:
    catalogue = shops.catalogue
    assert catalogue.unknown_brands([shops.a], ["Kellogg's", "KELLOGG'S", "Danone"]) == {}
    # Known in another case only: the engine would match nothing.
    assert catalogue.unknown_brands([shops.a], ["Kellogg's", "kellogg's", "Kelogs"]) == {
        "kellogg's": ["Kellogg's", "KELLOGG'S"],
        "Kelogs": ["Kellogg's", "KELLOGG'S"],  # 2*6/15 = 0.8 for both; the most seen first
    }
    # DAIRY: seen on a category page only.
    assert catalogue.unknown_categories([shops.a], ["DAIRY", "FROZEN", "Yoghurt"]) == {
        "Yoghurt": ["YOGURT"]  # 2*6/13; the others below 0.6
    }
    assert catalogue.unknown_products([shops.a], ["cereal-001", "yog-002", "frozen-yog"]) == {}
    assert catalogue.unknown_products([shops.a], ["cereal-01", "cereal-999"]) == {
        # cereal-001: 2*9/19, cereal-002: 2*8/19, cereal-xl: 2*7/18.
        "cereal-01": ["cereal-001", "cereal-002", "Cereal-XL"],
        # cereal-xl: 2*7/19, then cereal-002 and cereal-001: 2*7/20 (ties: name descending).
        "cereal-999": ["Cereal-XL", "cereal-002", "cereal-001"],
    }


def test_the_api_refuses_a_misspelt_brand_with_the_nearest_ones(shops: Shops) -> None:
    def create(label: str, **targets: Any) -> requests.Response:
        body = {
            "campaign_id": f"{label}-{shops.suffix}",
            "name": f"Catalogue {label}",
            "retailer_ids": [shops.a],
            "experience_type": "product_recommendation",
            "starts_at": (NOW + timedelta(days=1)).isoformat(),
            "ends_at": (NOW + timedelta(days=10)).isoformat(),
            **targets,
        }
        return requests.post(
            f"{shops.url}/v1/campaigns",
            json=body,
            headers={"Authorization": f"Bearer {shops.csm_a}"},
            timeout=TIMEOUT,
        )

    refused = create("misspelt", targeted_brands=["Kelogs", "Danone"])
    assert refused.status_code == 422, refused.text
    assert refused.json() == {
        "error": {
            "code": "unknown_brands",
            "message": "unknown brands: Kelogs (did you mean Kellogg's or KELLOGG'S?)",
            "brands": ["Kelogs"],
            "suggestions": {"Kelogs": ["Kellogg's", "KELLOGG'S"]},
        }
    }
    category = create("cat", targeted_categories=["Yoghurt"])
    assert category.status_code == 422, category.text
    assert category.json()["error"]["code"] == "unknown_categories"
    assert category.json()["error"]["suggestions"] == {"Yoghurt": ["YOGURT"]}
    product = create("prod", targeted_product_ids=["cereal-999"])  # retailer B's
    assert product.status_code == 422, product.text
    assert product.json()["error"]["product_ids"] == ["cereal-999"]
    assert product.json()["error"]["suggestions"] == {
        "cereal-999": ["Cereal-XL", "cereal-002", "cereal-001"]
    }
    created = create("spelt", targeted_brands=["Kellogg's"], targeted_categories=["DAIRY"])
    assert created.status_code == 201, created.text
    assert created.json()["targeted_brands"] == ["Kellogg's"]
    # A launch: a brand not sold there yet is accepted when the campaign says so.
    launch = create("launch", targeted_brands=["Brand New Co"], allow_unseen_targets=True)
    assert launch.status_code == 201, launch.text
    assert launch.json()["allow_unseen_targets"] is True
