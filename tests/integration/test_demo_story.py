"""`make demo`'s report agrees with an independent count of what went through the stream.

The report reads the stores (BigQuery read models and decisions, Bigtable rejected events).
The test counts the same replay another way: subscriptions of its own on the
``shopper-events`` and ``shopper-experiences`` topics, created before the replay (each
accepted event is published once; each decision once), and the refusals the tracker was
answered. The history and the nightly run are skipped here (``--skip-history``): the
retailers' default trees are compiled from two campaigns of the test's own first.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.campaigns.model import Campaign
from shared.decisions.commands import compile_trees_command
from shared.demo import story as demo_story
from shared.journey.tracker_simulator import RETAILERS
from shared.platform import clients
from shared.system.resources import SHOPPER_EVENTS_TOPIC, SHOPPER_EXPERIENCES_TOPIC

pytestmark = pytest.mark.integration


class Drain:
    """A subscription of the test's own on a topic; ``messages`` pulls until it is dry."""

    def __init__(self, project: str, topic: str) -> None:
        self.client = clients.subscriber_client()
        name = f"test-demo-{topic}-{random.getrandbits(32):08x}"
        self.path = self.client.subscription_path(project, name)
        self.client.create_subscription(
            request={"name": self.path, "topic": f"projects/{project}/topics/{topic}"},
            timeout=10,
        )

    def messages(self, quiet_s: float = 6.0) -> list[Any]:
        found: list[Any] = []
        last = time.monotonic()
        while time.monotonic() - last < quiet_s:
            response = self.client.pull(
                request={
                    "subscription": self.path,
                    "max_messages": 1000,
                    "return_immediately": True,
                },
                timeout=10,
            )
            if response.received_messages:
                self.client.acknowledge(
                    subscription=self.path, ack_ids=[m.ack_id for m in response.received_messages]
                )
                found += [m.message for m in response.received_messages]
                last = time.monotonic()
            else:
                time.sleep(0.2)
        return found

    def close(self) -> None:
        self.client.delete_subscription(subscription=self.path, timeout=10)


@pytest.mark.heavy
def test_the_report_matches_an_independent_count(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    options = demo_story.DemoOptions(
        households=25,
        rate=400.0,
        probes_per_s=20.0,
        leak_every=150,
        sample_seed=random.randrange(1, 1_000_000),  # fresh households on a reused stack
        skip_history=True,
        reports_dir=tmp_path,
    )
    # Two broad campaigns of the test's own, live now, with a large control group.
    store = FirestoreCampaignStore(clients.firestore_client(project))
    now = datetime.now(UTC)
    tag = f"{random.getrandbits(24):06x}"
    campaigns = [
        Campaign(
            campaign_id=f"test-demo-{kind}-{tag}",
            name=f"demo test {kind}",
            retailer_ids=list(RETAILERS),
            experience_type=kind,
            status="active",
            # The replayed week lies in the last two weeks (shift_weeks: it ends this
            # week): the campaigns cover it whatever the day of the week.
            starts_at=now - timedelta(days=15),
            ends_at=now + timedelta(days=1),
            targeted_categories=categories,
            threshold=Decimal(5),
            reward="a free coffee",
            control_share=0.3,
        )
        for kind, categories in (
            ("personalized_promotion", ["FLUID MILK PRODUCTS", "BAKED BREAD/BUNS/ROLLS"]),
            ("tension_cart", ["SOFT DRINKS", "CHEESE", "BAG SNACKS"]),
        )
    ]
    for campaign in campaigns:
        store.put(campaign)
    events = Drain(project, SHOPPER_EVENTS_TOPIC)
    decisions = Drain(project, SHOPPER_EXPERIENCES_TOPIC)
    try:
        assert compile_trees_command(argparse.Namespace(retailer=list(RETAILERS))) == 0
        outcome = demo_story.run(options, stack)
        published = events.messages()
        decided = decisions.messages()
    finally:
        events.close()
        decisions.close()
        for campaign in campaigns:
            store.put(campaign.model_copy(update={"status": "archived"}))
        compile_trees_command(argparse.Namespace(retailer=list(RETAILERS)))
    out = capsys.readouterr().out
    assert outcome.code == 0, out
    figures = outcome.figures
    replay = outcome.replay
    assert replay is not None and replay.accepted > 300, replay

    # Events: what the report read from BigQuery == what ingest published, event by event.
    ours = {
        m.attributes["event_id"] for m in published if m.attributes.get("retailer_id") in RETAILERS
    }
    assert figures.ingested == len(ours) == replay.accepted
    # Refusals: what the Bigtable rejected-events store holds == what the tracker was told.
    assert outcome.leaked > 0
    assert figures.rejected_by_reason == {"payload.email: personal_data_refused": outcome.leaked}
    assert replay.rejected == outcome.leaked

    # Decisions: what BigQuery holds == what the decider published, per experience type.
    by_event = {
        d["event_id"]: d
        for d in (json.loads(m.data) for m in decided)
        if d["retailer_id"] in RETAILERS and d["event_id"] in ours
    }
    assert figures.decisions == len(by_event) == len(ours)
    assert len(figures.latencies_ms) == figures.decisions
    shown: dict[str, int] = {}
    held_out: dict[str, int] = {}
    for d in by_event.values():
        for s in d["shown"]:
            shown[s["type"]] = shown.get(s["type"], 0) + 1
        for w in d["withheld"]:
            if w["reason"] == "held_out":
                held_out[w["type"]] = held_out.get(w["type"], 0) + 1
    assert shown, "the default trees showed nothing"
    assert {t: o.get("shown", 0) for t, o in figures.experiences.items() if o.get("shown")} == shown
    assert {
        t: o["held_out"] for t, o in figures.experiences.items() if o.get("held_out")
    } == held_out

    # The saved page, and the plain statement about uplift on replayed traffic.
    assert outcome.report is not None and outcome.report.exists()
    page = outcome.report.read_text()
    assert f"<b>{figures.ingested:,}</b> events ingested" in page
    assert "claims no effect" in page or "not computable" in page
    assert "Events ingested:" in out
