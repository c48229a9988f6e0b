"""The portfolio's pure rules: the list's filters, sorting, paging and URL state; pacing
and alerts; the figures from the stats query's rows; CSV exports; the preview's samples
(the decision engine's own answers). Expected values are written by hand."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.campaigns.exports import list_csv, report_csv
from shared.campaigns.model import Campaign
from shared.campaigns.portfolio import ListQuery, alerts, pacing, portfolio_alerts, select
from shared.campaigns.report import Z_95
from shared.campaigns.stats import CampaignStats, stats_from_rows, stats_params
from shared.decisions.previews import samples

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def campaign(campaign_id: str, **changes: Any) -> Campaign:
    data: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": f"Campaign {campaign_id}",
        "retailer_ids": ["r1"],
        "experience_type": "personalized_promotion",
        "status": "active",
        "starts_at": NOW - timedelta(days=10),
        "ends_at": NOW + timedelta(days=10),
        "targeted_product_ids": ["p1"],
    }
    data.update(changes)
    return Campaign.model_validate(data)


def stats(campaign_id: str, **changes: Any) -> CampaignStats:
    return CampaignStats.model_validate(
        {"campaign_id": campaign_id, "computed_at": NOW, "shown_recently": 5, **changes}
    )


def test_the_list_query_lives_in_the_url_and_bad_values_are_named_and_dropped() -> None:
    query, errors = ListQuery.parse(
        {"q": " yog ", "status": "live", "per_page": "7", "page": "x", "sort": "uplift"}
    )
    assert (query.q, query.status, query.sort) == ("yog", "live", "uplift")
    assert (query.per_page, query.page) == (50, 1)  # the defaults of the dropped values
    assert sorted(e.split(":")[0] for e in errors) == ["page", "per_page"]
    assert query.url_params(page=2) == "q=yog&status=live&sort=uplift&page=2"
    again, none = ListQuery.parse(dict(p.split("=") for p in query.url_params().split("&")))
    assert again == query and none == []


def test_filters_search_and_period_overlap() -> None:
    a = campaign("a", name="Spring Yoghurts", brand="Danone", retailer_ids=["r1", "r2"])
    b = campaign("b", brand="danone", experience_type="tension_cart", status="paused")
    c = campaign("c-yog", starts_at=NOW + timedelta(days=20), ends_at=NOW + timedelta(days=30))
    d = campaign("d", status="archived", ends_at=NOW - timedelta(days=1))
    everyone = [a, b, c, d]

    def ids(**params: str) -> list[str]:
        query, errors = ListQuery.parse({"sort": "name", "order": "asc", **params})
        assert errors == []
        # By name: "Campaign b", "Campaign c-yog", "Campaign d", "Spring Yoghurts".
        return [row.campaign.campaign_id for row in select(everyone, {}, query, NOW).rows]

    assert ids(q="YOG") == ["c-yog", "a"]  # the name of one, the id of the other
    assert ids(q="danone") == ["b", "a"]  # the brand, whatever its case
    assert ids(retailer="r2") == ["a"]
    assert ids(status="live") == ["a"]  # active and running now
    assert ids(status="paused") == ["b"]
    assert ids(experience="tension_cart") == ["b"]
    assert ids(brand="DANONE") == ["b", "a"]
    assert ids(period_from=(NOW + timedelta(days=15)).date().isoformat()) == ["c-yog"]
    assert ids(period_to=(NOW - timedelta(days=5)).date().isoformat()) == ["b", "d", "a"]
    page = select(everyone, {}, ListQuery(), NOW)
    assert page.retailers == ["r1", "r2"] and page.brands == ["Danone", "danone"]


def test_sorting_puts_unknown_figures_last_and_paging_cuts_a_stable_order() -> None:
    everyone = [campaign(f"c{i:03}") for i in range(120)]
    figures = {f"c{i:03}": stats(f"c{i:03}", uplift=float(i % 7)) for i in range(0, 120, 2)}
    query = ListQuery(sort="uplift", order="desc", per_page=50)
    first = select(everyone, figures, query, NOW)
    assert (first.total, first.pages, len(first.rows)) == (120, 3, 50)
    uplifts = [r.stats.uplift if r.stats else None for r in first.rows]
    assert uplifts[:9] == [6.0] * 9  # c006, c020, ..., c118: 60 known, 9 with i % 7 == 6
    assert [r.campaign.campaign_id for r in first.rows[:2]] == ["c118", "c104"]
    last = select(everyone, figures, query.model_copy(update={"page": 3}), NOW)
    assert len(last.rows) == 20 and all(r.stats is None for r in last.rows)
    assert [r.campaign.campaign_id for r in last.rows[:2]] == [
        "c081",
        "c083",
    ]  # unknown: by id, c001.. on page 2
    beyond = select(everyone, figures, query.model_copy(update={"page": 9}), NOW)
    assert beyond.page == 3  # a page past the end shows the last one
    seen = [
        r.campaign.campaign_id
        for p in (1, 2, 3)
        for r in select(everyone, figures, query.model_copy(update={"page": p}), NOW).rows
    ]
    assert sorted(seen) == sorted(c.campaign_id for c in everyone)  # each once


def test_pacing_and_the_budget_alerts() -> None:
    # 10 of 20 days elapsed; 600 of 1,000 spent: 1,200 at the end at this rate.
    fast = campaign("fast", budget=Decimal(1000))
    pace = pacing(fast, stats("fast", spent=600.0), NOW)
    assert pace.verdict == "too_fast" and pace.projected == 1200.0
    assert math.isclose(pace.ratio or 0, 1.2)
    found = alerts(fast, stats("fast", spent=600.0), NOW)
    assert [a.kind for a in found] == ["budget_runs_out"]
    # 400 left at 60 a day: out in 6.67 days, on 2026-12-08 (ends 2026-12-11).
    assert "run out of budget on 2026-12-08" in found[0].message
    assert pacing(fast, stats("fast", spent=400.0), NOW).verdict == "on_track"
    assert alerts(fast, stats("fast", spent=400.0), NOW) == []
    done = alerts(fast, stats("fast", spent=1000.0), NOW)
    assert [a.kind for a in done] == ["budget_exhausted"]
    flagged = campaign("flag", budget=Decimal(1000), budget_exhausted=True)
    assert [a.kind for a in alerts(flagged, stats("flag", spent=10.0), NOW)] == ["budget_exhausted"]
    assert pacing(campaign("free"), None, NOW).verdict == "no_budget"


def test_exposure_uplift_and_ending_alerts() -> None:
    quiet = stats("q", shown_recently=0)
    assert [a.kind for a in alerts(campaign("q"), quiet, NOW)] == ["no_exposure"]
    young = campaign("y", starts_at=NOW - timedelta(hours=20))
    assert alerts(young, quiet, NOW) == []  # not yet 24 hours old
    paused = campaign("p", status="paused")
    assert alerts(paused, quiet, NOW) == []  # paused: not shown, on purpose
    worse = stats("w", uplift=-2.0, uplift_low=-3.5, uplift_high=-0.5)
    assert [a.kind for a in alerts(campaign("w"), worse, NOW)] == ["uplift_negative"]
    unsure = stats("u", uplift=-2.0, uplift_low=-3.5, uplift_high=0.5)
    assert alerts(campaign("u"), unsure, NOW) == []
    ending = campaign("e", ends_at=NOW + timedelta(days=2))
    assert [a.kind for a in alerts(ending, stats("e"), NOW)] == ["ending_soon"]
    assert alerts(campaign("d", status="draft"), quiet, NOW) == []
    ranked = portfolio_alerts(
        [ending, campaign("w"), campaign("q")], {"e": stats("e"), "w": worse, "q": quiet}, NOW
    )
    assert [a.severity for a in ranked] == ["high", "medium", "low"]


def test_figures_from_the_stats_rows_welch_by_hand() -> None:
    c = campaign("c")
    rows = [
        {"part": "group", "campaign_id": "c", "grp": "exposed", "shoppers": 40,
         "targeted_mean": 12.0, "targeted_var": 16.0},
        {"part": "group", "campaign_id": "c", "grp": "held_out", "shoppers": 10,
         "targeted_mean": 10.0, "targeted_var": 9.0},
        {"part": "group", "campaign_id": "c", "grp": "mixed", "shoppers": 1,
         "targeted_mean": 1.0, "targeted_var": None},
        {"part": "recent", "campaign_id": "c", "shown_recently": 7,
         "last_shown_at": NOW - timedelta(hours=1)},
        {"part": "spent", "campaign_id": "c", "spent": 12.345},
    ]  # fmt: skip
    (found,) = stats_from_rows([c], rows, NOW)
    se = math.sqrt(16 / 40 + 9 / 10)
    assert (found.exposed, found.held_out, found.shown_recently) == (40, 10, 7)
    assert found.spent == 12.35 and found.uplift == 2.0
    assert found.uplift_low == round(2 - Z_95 * se, 4)
    assert found.uplift_high == round(2 + Z_95 * se, 4)
    (empty,) = stats_from_rows([campaign("z")], rows, NOW)
    assert (empty.exposed, empty.uplift, empty.spent) == (0, None, 0.0)
    assert empty.uplift_note and "no held-out" in empty.uplift_note
    params = stats_params([campaign("c", ends_at=NOW + timedelta(days=1))], NOW)
    assert '"ends": "2026-12-01T12:00:00+00:00"' in params["periods"]  # up to now


def test_csv_exports_keep_formulas_as_text() -> None:
    hostile = campaign("x", name='=HYPERLINK("http://evil")', brand="+cmd", budget=Decimal(50))
    page = select([hostile], {"x": stats("x", spent=5.0)}, ListQuery(), NOW)
    rows = list(csv.reader(io.StringIO(list_csv(page.rows))))
    assert rows[0][:3] == ["campaign_id", "name", "brand"]
    assert rows[1][1] == '\'=HYPERLINK("http://evil")' and rows[1][2] == "'+cmd"
    assert rows[1][9] == "5.0" and rows[1][10] == "0.2"  # spent; 10% spent / 50% elapsed
    report = {
        "campaign": {"campaign_id": "x", "name": "-1+1"},
        "period": {"from": "a", "to": "b"},
        "exposure": {"impressions": 3},
        "shoppers": {"exposed": 2},
        "participation": {"cost": 1.5},
        "targeted_sales": {"amount": 9.0},
        "uplift": {
            "targeted_sales": {
                "exposed": {"mean": 2.0, "shoppers": 2},
                "held_out": {"mean": 1.0, "shoppers": 2},
                "difference": 1.0,
                "ci95": [-1.0, 3.0],
                "reason": None,
            }
        },
        "daily": [
            {"day": "2026-12-01", "targeted_sales": 9.0, "cost": 1.5, "cost_cumulative": 1.5}
        ],
        "computed_at": "now",
    }
    lines = list(csv.reader(io.StringIO(report_csv(report))))
    assert ["campaign", "name", "'-1+1"] in lines
    assert ["uplift", "targeted_sales.ci95_low", "-1.0"] in lines
    assert ["daily", "2026-12-01.cost_cumulative", "1.5"] in lines


def test_the_preview_is_the_engines_answer_with_the_creative() -> None:
    promo = campaign(
        "promo",
        threshold=Decimal(10),
        generosity_pct=Decimal(20),
        explore_share=0.0,
        control_share=0.9,  # most sample shoppers are held out: the preview finds another
        creative={
            "title": "Yoghurt week",
            "text": "Treat yourself",
            "image_url": "https://x/y.png",
        },
    )
    steps = samples(promo, NOW)
    assert [s["label"] for s in steps] == [
        "A targeted product in the basket (5.00 of 10.00)",
        "The threshold reached (10.00)",
    ]
    first = {e["type"]: e["details"] for e in steps[0]["experiences"]}
    assert set(first) == {"personalized_promotion", "tension_cart"}
    assert first["personalized_promotion"]["unlocked"] is False
    assert first["personalized_promotion"]["generosity_pct"] == "20"
    assert first["tension_cart"]["missing"] == "5"
    assert first["personalized_promotion"]["creative"]["title"] == "Yoghurt week"
    second = {e["type"]: e["details"] for e in steps[1]["experiences"]}
    assert second["personalized_promotion"]["unlocked"] is True
    game = campaign(
        "game",
        experience_type="gamified_promotion",
        win_probability=0.1,
        prize_value=Decimal(5),
        budget=Decimal(100),
        targeted_brands=["Acme"],
        targeted_product_ids=[],
        starts_at=NOW + timedelta(days=1),  # not started: previewed at its first hour
        ends_at=NOW + timedelta(days=5),
    )
    (order,) = samples(game, NOW)
    (invitation,) = order["experiences"]
    assert invitation["type"] == "gamified_promotion" and invitation["details"]["play_token"]
    assert "creative" not in invitation["details"]


def test_the_cached_list_is_read_again_only_when_its_version_moved() -> None:
    from shared.campaigns.firestore_campaigns import CachedCampaigns, FirestoreCampaignStore

    class Store(FirestoreCampaignStore):
        def __init__(self) -> None:  # no client: the store's reads, counted
            self.token, self.reads, self.campaigns = "v1", 0, [campaign("a")]

        def version(self) -> str | None:
            return self.token

        def all(self) -> list[Campaign]:
            self.reads += 1
            return list(self.campaigns)

        def put(self, c: Campaign) -> None:
            self.campaigns.append(c)
            self.token = f"v{len(self.campaigns)}"

    store = Store()
    cached = CachedCampaigns(store)
    assert [c.campaign_id for c in cached.all()] == ["a"] and store.reads == 1
    cached.all()
    cached.all()
    assert store.reads == 1  # unchanged version: from memory
    store.campaigns.append(campaign("b"))
    store.token = "by-another-process"
    assert [c.campaign_id for c in cached.all()] == ["a", "b"] and store.reads == 2
    cached.put(campaign("c"))
    assert len(cached.all()) == 3 and store.reads == 3


def test_the_pickers_and_the_figures_job_publish_their_contracts() -> None:
    import json

    from shared.campaigns.api import openapi
    from shared.campaigns.stats import openapi as stats_openapi

    document = json.loads(json.dumps(openapi()))
    for kind in ("products", "brands", "categories"):
        operation = document["paths"][f"/catalogue/{kind}"]["get"]
        assert operation["security"] == [{"backOfficeSession": []}]
    assert document["components"]["securitySchemes"]["backOfficeSession"]["in"] == "cookie"
    assert "post" in json.loads(json.dumps(stats_openapi()))["paths"]["/"]


def test_a_duplicate_form_creates_the_same_campaign_as_a_draft_with_a_new_id() -> None:
    from shared.campaigns.api import form_to_data
    from shared.campaigns.back_office import duplicate_values

    source = campaign(
        "src",
        brand="Acme",
        retailer_ids=["r1", "r2"],
        targeted_brands=["Acme"],
        targeted_categories=["dairy"],
        threshold=Decimal("12.5"),
        budget=Decimal(300),
        generosity_min_pct=Decimal(5),
        explore_share=0.2,
        creative={"title": "T", "text": "x", "image_url": "https://i/y.png"},
    )
    data = form_to_data(duplicate_values(source), creating=True)
    assert data["campaign_id"] == "" and data["status"] == "draft"
    copy = Campaign.model_validate({**data, "campaign_id": "copy"})
    same = source.model_dump(exclude={"campaign_id", "name", "status"})
    assert copy.model_dump(exclude={"campaign_id", "name", "status"}) == same
    assert copy.name == "Campaign src (copy)"


def test_the_figures_query_stays_under_the_request_size_limit() -> None:
    from shared.campaigns.stats import REQUEST_LIMIT_BYTES, compute_stats

    class Warehouse:
        def __init__(self) -> None:
            self.sizes: list[int] = []

        def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
            self.sizes.append(sum(len(str(v)) for v in params.values()))
            return []

    big = [f"product-{i:06}" for i in range(20_000)]  # ~1.4 MB of parameters each
    campaigns = [campaign(f"c{i}", targeted_product_ids=big) for i in range(3)]
    campaigns.append(campaign("later", starts_at=NOW + timedelta(days=1)))
    warehouse = Warehouse()
    found = compute_stats(campaigns, warehouse, "p", "d", NOW)
    assert len(warehouse.sizes) == 3 and max(warehouse.sizes) < REQUEST_LIMIT_BYTES
    assert [s.campaign_id for s in found] == ["c0", "c1", "c2", "later"]
    small = Warehouse()
    compute_stats([campaign(f"s{i}") for i in range(500)], small, "p", "d", NOW)
    assert len(small.sizes) == 1  # a usual portfolio: one query
