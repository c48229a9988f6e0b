"""Pure rules of the back office: scopes, conflicts, the form, the uplift's interval."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.campaigns.admin import CsmAccount, conflicts, hash_key
from shared.campaigns.api import form_to_data
from shared.campaigns.model import Campaign
from shared.campaigns.report import Z_95, uplift
from shared.decisions.compiler import PersonalRules, ScoredProduct, personal_generosity, products_of

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def campaign(campaign_id: str = "c1", **changes: object) -> Campaign:
    data: dict[str, object] = {
        "campaign_id": campaign_id,
        "name": "Spring yoghurts",
        "retailer_ids": ["a"],
        "experience_type": "personalized_promotion",
        "status": "active",
        "starts_at": NOW,
        "ends_at": NOW + timedelta(days=10),
        "targeted_product_ids": ["p1"],
    }
    data.update(changes)
    return Campaign.model_validate(data)


def account(role: str, retailers: list[str] | None) -> CsmAccount:
    return CsmAccount(
        key_hash=hash_key("k"), csm_id="x", role=role, retailer_ids=retailers, created_at=NOW
    )


def test_a_csm_sees_only_campaigns_wholly_within_its_scope() -> None:
    csm = account("csm", ["a"])
    assert csm.sees(campaign(retailer_ids=["a"]))
    assert not csm.sees(campaign(retailer_ids=["b"]))
    assert not csm.sees(campaign(retailer_ids=["a", "b"]))
    assert account("admin", None).sees(campaign(retailer_ids=["a", "b"]))
    assert account("analyst", None).can_write is False
    with pytest.raises(ValidationError, match="at least one retailer"):
        account("csm", None)
    with pytest.raises(ValidationError, match="every retailer"):
        account("admin", ["a"])


def test_conflicts_need_type_retailer_period_and_target_in_common() -> None:
    base = campaign("new")
    assert [c.campaign_id for c in conflicts(base, [campaign("old")])] == ["old"]
    assert conflicts(base, [campaign("old", status="archived")]) == []
    assert conflicts(base, [campaign("old", retailer_ids=["b"])]) == []
    assert conflicts(base, [campaign("old", experience_type="tension_cart")]) == []
    assert conflicts(base, [campaign("old", targeted_product_ids=["p2"])]) == []
    later = campaign("old", starts_at=NOW + timedelta(days=10), ends_at=NOW + timedelta(days=20))
    assert conflicts(base, [later]) == []  # periods touch, do not overlap
    brand = campaign("old", targeted_product_ids=[], targeted_brands=["Danone"])
    assert conflicts(campaign("new", targeted_brands=["Danone"]), [brand]) != []


def test_model_rules_generosity_bounds_targets_creative() -> None:
    with pytest.raises(ValidationError, match="generosity_min_pct must not exceed"):
        campaign(generosity_pct=5, generosity_min_pct=6)
    with pytest.raises(ValidationError, match="targets products, brands or categories"):
        campaign(targeted_product_ids=[])
    with pytest.raises(ValidationError, match="image_url"):
        campaign(creative={"title": "t", "image_url": "javascript:alert(1)"})
    only_category = campaign(targeted_product_ids=[], targeted_categories=["YOGURT"])
    assert products_of(only_category).matches("p9", None, "YOGURT")
    habitual = [ScoredProduct(product_id="p1", rank=1, score=1.0)]
    # A shopper who buys it anyway gets half the generosity, never below the floor.
    assert personal_generosity(campaign(generosity_pct=20), habitual, PersonalRules()) == 10
    floor = campaign(generosity_pct=20, generosity_min_pct=15)
    assert personal_generosity(floor, habitual, PersonalRules()) == 15


def test_the_form_becomes_campaign_fields() -> None:
    data = form_to_data(
        {
            "campaign_id": "c9",
            "name": "Yoghurts",
            "retailer_ids": "a, b",
            "experience_type": "gamified_promotion",
            "starts_at": "2026-12-01T00:00",
            "ends_at": "2026-12-15T12:30",
            "targeted_product_ids": "p1,\np2",
            "generosity_pct": "10",
            "budget": "500",
            "win_probability": "0.1",
            "prize_value": "5",
            "threshold": "",
            "creative_title": "Win!",
            "creative_image_url": "",
            "activate": "on",
        },
        creating=True,
    )
    assert data["retailer_ids"] == ["a", "b"]
    assert data["targeted_product_ids"] == ["p1", "p2"]
    assert data["starts_at"] == "2026-12-01T00:00:00+00:00"
    assert data["status"] == "active"
    assert "threshold" not in data and data["reward"] is None
    assert data["creative"] == {"title": "Win!", "text": "", "image_url": None}
    built = Campaign.model_validate(data)
    assert built.budget == 500 and built.ends_at.hour == 12


def test_uplift_interval_is_welch_normal_by_hand() -> None:
    exposed = {"n": 4, "m": 12.0, "v": 4.0}
    held = {"n": 3, "m": 10.0, "v": 1.0}
    result = uplift(exposed, held, "m", "v", "n")
    se = math.sqrt(4.0 / 4 + 1.0 / 3)
    assert result["computable"] and result["difference"] == 2.0
    assert result["relative"] == 0.2
    assert result["ci95"] == [round(2 - Z_95 * se, 4), round(2 + Z_95 * se, 4)]
    none = uplift(exposed, None, "m", "v", "n")
    assert not none["computable"] and "no held-out shopper" in none["reason"]
    small = uplift(exposed, {"n": 1, "m": 9.0, "v": None}, "m", "v", "n")
    assert small["difference"] == 3.0 and small["ci95"] is None


def test_pages_escape_what_csms_typed_and_the_openapi_document_is_json() -> None:
    import json

    from shared.campaigns.api import openapi
    from shared.campaigns.back_office import form_page, list_page, portfolio_page, preview_page
    from shared.campaigns.portfolio import ListQuery, portfolio_alerts, select
    from shared.decisions.previews import samples

    hostile = campaign(name="<script>alert(1)</script>", brand='"><img src=x>')
    admin = account("admin", None)
    listed = select([hostile], {}, ListQuery(), NOW)
    alerts = portfolio_alerts([hostile], {}, NOW + timedelta(days=8))
    assert alerts  # ending soon, no exposure: the name is shown in the alerts
    pages = (
        list_page(admin, ListQuery(q="<script>"), listed, None),
        form_page(admin, hostile, None, []),
        portfolio_page(admin, [hostile], alerts, None, 0.0, 0.0, NOW),
        preview_page(admin, hostile, samples(hostile, NOW)),
    )
    for page in pages:
        assert "<script>alert" not in page and '"><img' not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    document = json.loads(json.dumps(openapi()))
    assert "/v1/campaigns/{campaign_id}/report" in document["paths"]
    assert "Creative" in document["components"]["schemas"]
