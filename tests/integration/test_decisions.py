"""A shopper's session through the ingest API moves them along their tree; the tracker
reads each step's experiences from the experiences endpoint; redeliveries change nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from emulators.config import StackSettings
from shared.contract.events import validate_event
from shared.decisions.bigtable_state import BigtableTrees
from shared.decisions.play_tokens import verify
from shared.decisions.trees import ExperienceTree, Node
from shared.ingestion.pubsub_publisher import PubSubEventPublisher
from shared.ingestion.service import make_record, message_head
from shared.platform import clients
from shared.system.resources import BIGTABLE_INSTANCE, SHOPPER_EVENTS_TOPIC
from shared.system.settings import DeciderSettings
from tests.factories import event
from tests.integration.test_freezer import query
from tests.integration.test_ingest_api import post
from tests.unit.test_decisions import pasta_tree

pytestmark = pytest.mark.integration


def experiences(stack: dict[str, str], shopper: str, key: str | None = None) -> requests.Response:
    return requests.get(
        f"{stack['EXPERIENCES_URL']}/v1/experiences",
        headers={"X-Api-Key": key or stack["DEMO_API_KEY"], "X-Shopper-Id": shopper},
        timeout=10,
    )


def wait_for_answer(stack: dict[str, str], shopper: str, event_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = experiences(stack, shopper)
        if response.status_code == 200 and response.json()["event_id"] == event_id:
            return dict(response.json())
        time.sleep(0.05)
    raise AssertionError(f"no answer to {event_id}: {response.status_code} {response.text}")


def redeliver(stack: dict[str, str], raw: dict[str, Any]) -> None:
    """The same event on the topic again, as an at-least-once delivery may bring it."""
    retailer = stack["DEMO_RETAILER_ID"]
    parsed = validate_event(raw)
    assert not isinstance(parsed, list)
    record = make_record(retailer, parsed, message_head(retailer, datetime.now(UTC)))
    project = stack["GOOGLE_CLOUD_PROJECT"]
    publisher = PubSubEventPublisher(
        clients.publisher_api(), clients.topic_path(project, SHOPPER_EVENTS_TOPIC)
    )
    publisher.publish([record])


def test_a_session_moves_along_the_tree_step_by_step(
    stack: dict[str, str], stack_settings: StackSettings, unique: str
) -> None:
    retailer = stack["DEMO_RETAILER_ID"]
    shopper = f"decide-{unique}"
    now = datetime.now(UTC)
    put_personal_tree(stack, shopper)
    assert experiences(stack, shopper).status_code == 404

    start = now - timedelta(minutes=4)

    def step(kind: str, seconds: int, **payload: Any) -> dict[str, Any]:
        raw = event(kind, shopper, start + timedelta(seconds=seconds))
        raw["payload"] = payload
        assert post(stack, [raw]).json()["accepted"] == 1
        return wait_for_answer(stack, shopper, raw["event_id"]) | {"_raw": raw}

    def names(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {e["experience_id"]: e["details"] for e in answer["experiences"]}

    pasta = {"product_id": "pasta-1", "quantity": 2, "unit_price": "1.50", "brand": "B"}
    sauce = {"product_id": "sauce-1", "quantity": 1, "unit_price": "3.00", "brand": "B"}
    added = step("product_added_to_basket", 10, **pasta)
    assert added["node_id"] == "pasta"
    assert names(added)["reco-sauce"]["product_id"] == "sauce-1"
    assert names(added)["tension"]["missing"] == "17"
    removed = step("product_removed_from_basket", 20, **pasta)
    assert (removed["node_id"], removed["experiences"]) == ("root", [])
    again = step("product_added_to_basket", 30, **pasta)
    assert again["node_id"] == "pasta"
    with_sauce = step("product_added_to_basket", 40, **sauce)
    assert with_sauce["node_id"] == "pasta_sauce"
    assert names(with_sauce)["tension"]["missing"] == "14"
    redeliver(stack, with_sauce["_raw"])  # must not add the sauce twice
    looked = step("page_viewed", 45, url="/basket", page_type="basket")
    assert looked["node_id"] == "pasta_sauce"
    assert names(looked)["tension"]["missing"] == "14"
    order = {
        "order_id": f"o-{unique}",
        "total": "6.00",
        "lines": [pasta, sauce],
    }
    paid = step("cart_validated", 50, **order)
    invitation = names(paid)["play"]
    key = (stack_settings.local_dir / "play-signing-key").read_text().strip().encode()
    grant = verify(invitation["play_token"], key, datetime.now(UTC))
    assert (grant.order_id, grant.shopper_id, grant.retailer_id) == (
        order["order_id"],
        shopper,
        retailer,
    )
    assert names(paid)["tension"]["missing"] == "20"

    # The tracker's retry of a whole step is refused as a duplicate by ingest itself.
    assert post(stack, [with_sauce["_raw"]]).json()["duplicate_count"] == 1

    # Every decision is frozen into BigQuery, once, with each experience's outcome.
    deadline = time.monotonic() + 60
    frozen: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(frozen) < 6:
        frozen = query(
            stack,
            f"SELECT row_id, node_id, shown_count FROM `{stack['GOOGLE_CLOUD_PROJECT']}"
            ".cartwise.decisions` WHERE shopper_id = @s ORDER BY occurred_at",
            s=shopper,
        )
        time.sleep(0.5)
    assert [r["node_id"] for r in frozen] == [
        "pasta",
        "root",
        "pasta",
        "pasta_sauce",
        "pasta_sauce",
        "pasta_sauce",
    ]
    outcomes = query(
        stack,
        f"SELECT experience_id, outcome FROM `{stack['GOOGLE_CLOUD_PROJECT']}"
        ".cartwise.decision_experiences` WHERE event_id = @e",
        e=paid["_raw"]["event_id"],
    )
    assert sorted((r["experience_id"], r["outcome"]) for r in outcomes) == [
        ("play", "shown"),
        ("tension", "shown"),
    ]

    # Another retailer's key does not see this shopper.
    assert experiences(stack, shopper, "cwk_unknown").status_code == 401


def test_campaigns_compile_into_the_default_tree_and_other_retailers_see_nothing(
    stack: dict[str, str], unique: str, retailer_key: Callable[[str], str]
) -> None:
    from shared import cli
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.campaigns.model import Campaign

    retailer = stack["DEMO_RETAILER_ID"]
    brand = f"BRAND-{unique}"
    now = datetime.now(UTC)
    firestore = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"])
    campaigns = FirestoreCampaignStore(firestore)
    campaigns.put(
        Campaign(
            campaign_id=f"c-{unique}",
            name="pasta week",
            retailer_ids=[retailer],
            experience_type="personalized_promotion",
            status="active",
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=7),
            targeted_brands=[brand],
            threshold=Decimal(10),
            control_share=0.0,
            explore_share=0.0,  # the campaign's own level for everyone
        )
    )
    try:
        assert cli.main(["compile-trees"]) == 0
        shopper = f"default-{unique}"
        deadline = time.monotonic() + 45
        answer: dict[str, Any] = {}
        sent: list[str] = []
        while time.monotonic() < deadline:  # the decider re-reads default trees every 10 s
            raw = event("product_added_to_basket", shopper)
            raw["payload"] = {"product_id": "p-1", "quantity": 3, "unit_price": "2", "brand": brand}
            assert post(stack, [raw]).json()["accepted"] == 1
            sent.append(raw["event_id"])
            time.sleep(1)
            response = experiences(stack, shopper)
            if response.status_code == 200 and response.json()["experiences"]:
                answer = response.json()
                break
        shown = {e["experience_id"]: e["details"] for e in answer["experiences"]}
        assert answer["node_id"] == f"c-{unique}"
        # Adds made before the tree was read still filled the basket: 3 x 2 each.
        value = 6 * (sent.index(answer["event_id"]) + 1)
        assert shown[f"c-{unique}:tension"]["basket_value"] == str(value)
        assert shown[f"c-{unique}:tension"]["missing"] == str(max(0, 10 - value))
        assert shown[f"c-{unique}:promotion"]["generosity_pct"] == "10"
        assert shown[f"c-{unique}:promotion"]["offer"] == {
            "policy": "campaign",
            "level": "10%@1x",
            "policy_level": "10%@1x",
            "chosen_by": "policy",
            "propensity": 1.0,
        }
        # The offer is frozen with the decision (what the offer policy learns from).
        offers: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not offers:
            offers = query(
                stack,
                "SELECT offer_policy, offer_level, offer_policy_level, generosity_pct, threshold,"
                " offer_chosen_by,"
                f" offer_propensity FROM `{stack['GOOGLE_CLOUD_PROJECT']}"
                ".cartwise.decision_experiences` WHERE event_id = @e AND experience_id = @x",
                e=answer["event_id"],
                x=f"c-{unique}:promotion",
            )
            time.sleep(0.5)
        assert offers == [
            {
                "offer_policy": "campaign",
                "offer_level": "10%@1x",
                "offer_policy_level": "10%@1x",
                "generosity_pct": Decimal(10),
                "threshold": Decimal(10),
                "offer_chosen_by": "policy",
                "offer_propensity": 1.0,
            }
        ]

        other = retailer_key(f"other-{unique}")
        assert experiences(stack, shopper, other).status_code == 404
    finally:
        campaigns.put(
            campaigns.get(f"c-{unique}").model_copy(update={"status": "archived"})  # type: ignore[union-attr]
        )
        assert cli.main(["compile-trees", "--retailer", retailer]) == 0  # now without it


# --- campaign rules through the whole stack: frequency caps, sessions, budgets ------------

PASTA = {"product_id": "pasta-1", "quantity": 2, "unit_price": "1.50", "brand": "B"}
SAUCE = {"product_id": "sauce-1", "quantity": 1, "unit_price": "3.00", "brand": "B"}


def put_personal_tree(
    stack: dict[str, str],
    shopper: str,
    *,
    sauce_rule: dict[str, Any] | None = None,
    play_campaign: str = "c-play",
) -> None:
    """``pasta_tree()`` as ``shopper``'s personal tree on the demo retailer, its campaigns
    running now; ``sauce_rule``: changes to ``c-sauce``'s rule (its caps), ``play_campaign``:
    the campaign of the ``play`` invitation."""
    retailer = stack["DEMO_RETAILER_ID"]
    now = datetime.now(UTC)
    base = pasta_tree()
    window = {
        "retailer_ids": frozenset({retailer}),
        "starts_at": now - timedelta(days=1),
        "ends_at": now + timedelta(days=1),
    }
    tree = base.model_copy(
        update={
            "retailer_id": retailer,
            "shopper_id": shopper,
            "compiled_at": now - timedelta(minutes=1),
            "valid_until": now + timedelta(days=1),
            "experiences": {
                **base.experiences,
                "play": base.experiences["play"].model_copy(update={"campaign_id": play_campaign}),
            },
            "campaigns": {
                "c-sauce": base.campaigns["c-sauce"].model_copy(update=window | (sauce_rule or {})),
                play_campaign: base.campaigns["c-play"].model_copy(update=window),
            },
        }
    )
    trees = BigtableTrees(clients.bigtable_client(stack["GOOGLE_CLOUD_PROJECT"]), BIGTABLE_INSTANCE)
    trees.put([tree])
    live_at_retailer(trees, tree)


def live_at_retailer(trees: BigtableTrees, tree: ExperienceTree) -> None:
    """The personal tree's campaigns live at its retailer: in the retailer's default tree,
    as the recompilation puts every live campaign (the decider withholds a campaign of a
    personal tree that the default tree no longer holds: docs/CAMPAIGNS.md, "Live in
    seconds"); then the decider's cache of default trees is let expire."""
    now = datetime.now(UTC)
    default = trees.default(tree.retailer_id) or ExperienceTree(
        tree_version="default-empty",
        retailer_id=tree.retailer_id,
        compiled_at=now,
        valid_until=now + timedelta(days=2),
        root="root",
        nodes={"root": Node()},
    )
    trees.put(
        [
            default.model_copy(
                update={
                    "tree_version": f"{default.tree_version}+test",
                    "campaigns": {**default.campaigns, **tree.campaigns},
                    "valid_until": max(default.valid_until, now + timedelta(days=1)),
                }
            )
        ]
    )
    time.sleep(DeciderSettings.model_fields["default_tree_ttl_s"].default + 0.2)


def send(
    stack: dict[str, str],
    shopper: str,
    kind: str,
    at: datetime,
    payload: dict[str, Any] | None = None,
    *,
    session: str | None,
) -> tuple[str, dict[str, Any]]:
    """One tracker event through the ingest API (``session`` None: the event carries no
    session id); its id, and the experiences endpoint's answer once it reflects it."""
    raw = event(kind, shopper, at)
    if payload is not None:
        raw["payload"] = payload
    if session is None:
        del raw["session_id"]
    else:
        raw["session_id"] = session
    accepted = post(stack, [raw]).json()
    assert accepted["accepted"] == 1, accepted
    return raw["event_id"], wait_for_answer(stack, shopper, raw["event_id"])


def displayed(experience_id: str, campaign_id: str) -> dict[str, Any]:
    return {"experience_id": experience_id, "campaign_id": campaign_id}


def shown_ids(answer: dict[str, Any]) -> set[str]:
    return {e["experience_id"] for e in answer["experiences"]}


def frozen_outcomes(
    stack: dict[str, str], shopper: str, event_ids: list[str]
) -> dict[str, dict[str, str]]:
    """``{event_id: {experience_id: outcome}}`` from BigQuery, once every decision on
    ``event_ids`` is frozen there."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    deadline = time.monotonic() + 60
    found: dict[str, dict[str, str]] = {}
    while time.monotonic() < deadline:
        found = {}
        for row in query(
            stack,
            f"SELECT event_id, experience_id, outcome FROM `{project}"
            ".cartwise.decision_experiences` WHERE shopper_id = @s",
            s=shopper,
        ):
            found.setdefault(row["event_id"], {})[row["experience_id"]] = row["outcome"]
        if all(e in found for e in event_ids):
            return found
        time.sleep(0.5)
    missing = [e for e in event_ids if e not in found]
    raise AssertionError(f"decisions not frozen after 60 s: {missing}")


def test_frequency_caps_count_the_trackers_impressions_per_session_and_in_total(
    stack: dict[str, str], unique: str
) -> None:
    """``c-sauce`` may show ``reco-sauce`` once per session, twice ever: the impressions
    are the tracker's ``experience_displayed`` events, posted like any other."""
    shopper = f"cap-{unique}"
    put_personal_tree(stack, shopper, sauce_rule={"max_per_session": 1, "max_total": 2})
    start = datetime.now(UTC) - timedelta(minutes=10)
    seen = displayed("reco-sauce", "c-sauce")

    def at(seconds: int) -> datetime:
        return start + timedelta(seconds=seconds)

    # Session 1: offered, displayed once, then capped for the rest of the session.
    added, answer = send(stack, shopper, "product_added_to_basket", at(0), PASTA, session="s1")
    assert answer["node_id"] == "pasta"
    assert shown_ids(answer) == {"reco-sauce", "tension"}
    shown_1, answer = send(stack, shopper, "experience_displayed", at(5), seen, session="s1")
    assert (answer["node_id"], shown_ids(answer)) == ("pasta", {"tension"})
    capped_1, answer = send(stack, shopper, "page_viewed", at(10), session="s1")
    assert (answer["node_id"], shown_ids(answer)) == ("pasta", {"tension"})
    # Session 2 (a new session id, the basket kept): offered again, displayed, capped.
    again, answer = send(stack, shopper, "page_viewed", at(60), session="s2")
    assert (answer["node_id"], shown_ids(answer)) == ("pasta", {"reco-sauce", "tension"})
    shown_2, answer = send(stack, shopper, "experience_displayed", at(65), seen, session="s2")
    assert shown_ids(answer) == {"tension"}
    capped_2, answer = send(stack, shopper, "page_viewed", at(70), session="s2")
    assert shown_ids(answer) == {"tension"}
    # Session 3: max_total reached, withheld for good.
    for_good, answer = send(stack, shopper, "page_viewed", at(120), session="s3")
    assert (answer["node_id"], shown_ids(answer)) == ("pasta", {"tension"})

    outcomes = frozen_outcomes(
        stack, shopper, [added, shown_1, capped_1, again, shown_2, capped_2, for_good]
    )
    assert [outcomes[e]["reco-sauce"] for e in (added, shown_1, capped_1)] == [
        "shown",
        "frequency_cap",
        "frequency_cap",
    ]
    assert [outcomes[e]["reco-sauce"] for e in (again, shown_2, capped_2, for_good)] == [
        "shown",
        "frequency_cap",
        "frequency_cap",
        "frequency_cap",
    ]
    assert {outcomes[e]["tension"] for e in outcomes} == {"shown"}  # no campaign, no cap


def test_thirty_minutes_of_silence_start_a_new_session_that_resets_the_cap(
    stack: dict[str, str], unique: str
) -> None:
    """Events without a session id: the session is what SESSION_GAP (30 min) of silence
    ends. 29 min of silence keep it (still capped); 31 min start a new one (shown again)."""
    shopper = f"gap-{unique}"
    put_personal_tree(stack, shopper, sauce_rule={"max_per_session": 1})
    start = datetime.now(UTC) - timedelta(minutes=65)
    seen = displayed("reco-sauce", "c-sauce")

    added, answer = send(stack, shopper, "product_added_to_basket", start, PASTA, session=None)
    assert shown_ids(answer) == {"reco-sauce", "tension"}
    impression, answer = send(
        stack, shopper, "experience_displayed", start + timedelta(seconds=5), seen, session=None
    )
    assert shown_ids(answer) == {"tension"}
    quiet = start + timedelta(seconds=5, minutes=29)
    kept, answer = send(stack, shopper, "page_viewed", quiet, session=None)
    assert (answer["node_id"], shown_ids(answer)) == ("pasta", {"tension"})
    gone = quiet + timedelta(minutes=31)
    renewed, answer = send(stack, shopper, "page_viewed", gone, session=None)
    assert (answer["node_id"], shown_ids(answer)) == ("pasta", {"reco-sauce", "tension"})
    # And the new session is capped in turn by its own first impression.
    impression_2, answer = send(
        stack, shopper, "experience_displayed", gone + timedelta(seconds=5), seen, session=None
    )
    assert shown_ids(answer) == {"tension"}

    outcomes = frozen_outcomes(stack, shopper, [added, impression, kept, renewed, impression_2])
    assert [
        outcomes[e]["reco-sauce"] for e in (added, impression, kept, renewed, impression_2)
    ] == [
        "shown",
        "frequency_cap",
        "frequency_cap",
        "shown",
        "frequency_cap",
    ]


def test_a_campaign_whose_budget_is_spent_stops_being_offered(
    stack: dict[str, str], unique: str
) -> None:
    """A game whose budget pays one prize: the first play wins it, the rewards code flags
    the campaign ``budget_exhausted``, and once the decider's budget cache expires (its
    TTL) the next orders' decisions withhold the invitation with that outcome."""
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.campaigns.model import Campaign
    from tests.integration.campaign_cleanup import remove
    from tests.integration.test_rewards import play

    # The decider builds its gate with its settings' TTL (shared/decisions/composition.py).
    ttl_s = float(DeciderSettings.model_fields["budget_ttl_s"].default)
    retailer = stack["DEMO_RETAILER_ID"]
    shopper = f"budget-{unique}"
    campaign_id = f"budget-{unique}"
    now = datetime.now(UTC)
    campaigns = FirestoreCampaignStore(clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"]))
    campaigns.put(
        Campaign(
            campaign_id=campaign_id,
            name="Play and win, once",
            retailer_ids=[retailer],
            experience_type="gamified_promotion",
            status="active",
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=1),
            # A brand of its own: a default tree compiled meanwhile offers it to nobody.
            targeted_brands=[f"BRAND-{unique}"],
            budget=Decimal(5),
            win_probability=1.0,
            prize_value=Decimal(5),
        )
    )
    try:
        put_personal_tree(stack, shopper, play_campaign=campaign_id)
        start = now - timedelta(minutes=5)
        send(stack, shopper, "product_added_to_basket", start, PASTA, session="s1")
        send(
            stack,
            shopper,
            "product_added_to_basket",
            start + timedelta(seconds=1),
            SAUCE,
            session="s1",
        )
        orders = iter(range(1_000))

        def order_placed() -> tuple[str, dict[str, Any]]:
            n = next(orders)
            order = {"order_id": f"o-{unique}-{n}", "total": "6.00", "lines": [PASTA, SAUCE]}
            at = start + timedelta(seconds=10 + n)
            event_id, answer = send(stack, shopper, "cart_validated", at, order, session="s1")
            assert answer["node_id"] == "pasta_sauce"  # decided by the engine, at the node
            assert "tension" in shown_ids(answer)
            return event_id, {e["experience_id"]: e["details"] for e in answer["experiences"]}

        invited, offer = order_placed()
        assert "play" in offer  # before the win the invitation is offered
        played = play(stack, offer["play"]["play_token"])
        assert played.status_code == 201, played.text
        assert played.json()["outcome"] == "won"
        deadline = time.monotonic() + 30
        while not campaigns.get(campaign_id).budget_exhausted:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the win did not flag the budget exhausted"
            time.sleep(0.1)
        flagged = time.monotonic()

        # Until the decider's cache expires it may still offer the game; then never again.
        still_offered: list[str] = []
        deadline = flagged + ttl_s + 15
        while True:
            event_id, offer = order_placed()
            if "play" not in offer:
                break
            still_offered.append(event_id)
            assert time.monotonic() < deadline, (
                f"still offered {time.monotonic() - flagged:.1f} s after the flag (TTL {ttl_s} s)"
            )
            time.sleep(0.5)
        withheld = event_id
        after, offer = order_placed()
        assert "play" not in offer

        outcomes = frozen_outcomes(stack, shopper, [invited, *still_offered, withheld, after])
        assert outcomes[invited]["play"] == "shown"
        assert {outcomes[e]["play"] for e in still_offered} <= {"shown"}
        assert outcomes[withheld] == {"tension": "shown", "play": "budget_exhausted"}
        assert outcomes[after] == {"tension": "shown", "play": "budget_exhausted"}
    finally:
        remove(stack, campaign_ids=[campaign_id])
