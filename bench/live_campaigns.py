"""Campaign changes live in seconds: "activated -> first shown" and "paused -> last shown".

``python -m bench.live_campaigns [--trials 20] [--json PATH]``

On the running stack, a retailer of the bench's own (its API key, a CSM key) and three
shoppers who keep adding the campaign's product to their baskets, each event followed by
the experiences endpoint asked with ``?after=<event_id>`` as the tracker does (one event
every ``--interval`` s per shopper, each in its own thread):

- ``default``: a shopper with no personal tree (the retailer's default tree);
- ``personal``: a shopper whose personal tree was compiled "last night", before the
  campaign existed (the campaign is grafted from the default tree);
- ``known``: a shopper whose personal tree holds the campaign (compiled after it was
  created, as if the nightly had run): pausing must withhold it.

Each trial: a CSM creates the campaign ``active`` through the campaigns API; "activated ->
first shown" is from the API's answer to the first answer of the experiences endpoint that
shows it (default and personal shoppers). Then the CSM pauses it; "paused -> last shown" is
from the pause's answer to the last answer that still showed it (0 when none did), watched
for ``--watch`` s. The campaign is archived before the next trial.

The default tree is read every 20 ms beside it: ``tree_recompiled_*`` is the part of each
figure spent before the tree held the change (the rest is the decider's 2 s cache and the
shopper's next event). Beside them, in the same run, the floor: the time from an event's
acknowledgement to its answer (event -> experience) while nothing changes — a change cannot
reach a shopper sooner than their next event's decision.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.freeze import stack_env
from emulators.config import StackSettings
from shared.demo.probes import percentile

TIMEOUT = 30


@dataclass
class Shopper:
    """One shopper's loop: an add, then its answer; what each answer showed, and when."""

    name: str
    shopper_id: str
    answers: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # ack -> answer, seconds
    errors: int = 0

    def shown_since(self, campaign_id: str, since: float) -> list[float]:
        return [at for at, shown in self.answers if at >= since and campaign_id in shown]


class Bench:
    def __init__(self, env: dict[str, str], interval: float) -> None:
        from shared.campaigns.admin import issue_csm_key
        from shared.campaigns.firestore_admin import FirestoreCsmAccounts
        from shared.platform import clients
        from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
        from shared.retailers.keys import issue_api_key
        from shared.system.resources import CREDENTIALS_DATABASE

        self.env = env
        self.interval = interval
        suffix = uuid.uuid4().hex[:8]
        self.retailer, self.product = f"bench-live-{suffix}", f"bench-product-{suffix}"
        project = env["GOOGLE_CLOUD_PROJECT"]
        now = datetime.now(UTC)
        clients.firestore_client(project).collection("retailers").document(self.retailer).set(
            {"name": self.retailer}
        )
        self._catalogue(now)
        credentials = clients.firestore_client(project, CREDENTIALS_DATABASE)
        self.api_key = issue_api_key(FirestoreApiKeyStore(credentials), self.retailer, now)
        self.csm_key = issue_csm_key(
            FirestoreCsmAccounts(credentials), f"bench-{suffix}", "csm", [self.retailer], now
        )
        self.shoppers = [
            Shopper(name, f"bench-{name}-{suffix}") for name in ("default", "personal", "known")
        ]
        self.stop = threading.Event()
        self.tree_changes: list[tuple[float, frozenset[str]]] = []  # default tree's campaigns

    def _catalogue(self, now: datetime) -> None:
        """The product sold once at the retailer: the campaigns API refuses unknown ones."""
        from shared.platform import clients

        project = self.env["GOOGLE_CLOUD_PROJECT"]
        client = clients.bigquery_client(project, self.env["BIGQUERY_EMULATOR_HOST"])
        at = (now - timedelta(days=2)).isoformat()
        row = {
            "row_id": f"{self.retailer}/{uuid.uuid4()}:0",
            "event_id": str(uuid.uuid4()),
            "retailer_id": self.retailer,
            "shopper_id": "bench-catalogue",
            "occurred_at": at,
            "ingested_at": at,
            "order_id": "bench-order",
            "line_number": 0,
            "product_id": self.product,
            "quantity": 1,
            "unit_price": "3.00",
            "discount": "0",
            "amount": "3.00",
        }
        errors = client.insert_rows_json(f"{project}.cartwise.sold_products", [row], timeout=60)
        if errors:
            sys.exit(f"could not add the bench's product: {errors}")

    def personal_tree(self, shopper: Shopper, campaigns: list[Any], at: datetime) -> None:
        from shared.decisions.bigtable_state import BigtableTrees
        from shared.decisions.compiler import ScoredProduct, compile_personal_tree
        from shared.platform import clients
        from shared.system.resources import BIGTABLE_INSTANCE

        tree = compile_personal_tree(
            self.retailer,
            shopper.shopper_id,
            scores=[ScoredProduct(self.product, 1, 1.0), ScoredProduct("usual", 2, 0.5)],
            complements={},
            profile=None,
            campaigns=campaigns,
            now=at,
            run_id="bench",
        )
        client = clients.bigtable_client(self.env["GOOGLE_CLOUD_PROJECT"])
        BigtableTrees(client, BIGTABLE_INSTANCE).put([tree])

    def campaigns(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(
            method,
            f"{self.env['CAMPAIGNS_URL']}/v1/campaigns{path}",
            headers={"Authorization": f"Bearer {self.csm_key}"},
            json=body,
            timeout=TIMEOUT,
        )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def loop(self, shopper: Shopper) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            event_id = str(uuid.uuid4())
            event = {
                "event_id": event_id,
                "type": "product_added_to_basket",
                "shopper_id": shopper.shopper_id,
                "session_id": "bench",
                "occurred_at": datetime.now(UTC).isoformat(),
                "schema_version": 1,
                "payload": {"product_id": self.product, "quantity": 1, "unit_price": "3.00"},
            }
            try:
                posted = session.post(
                    f"{self.env['INGEST_URL']}/v1/events",
                    json={"events": [event]},
                    headers={"X-Api-Key": self.api_key},
                    timeout=TIMEOUT,
                )
                acked = time.monotonic()
                answer = session.get(
                    f"{self.env['EXPERIENCES_URL']}/v1/experiences",
                    params={"after": event_id, "wait_ms": "10000"},
                    headers={"X-Api-Key": self.api_key, "X-Shopper-Id": shopper.shopper_id},
                    timeout=TIMEOUT,
                )
                answered = time.monotonic()
            except requests.RequestException:
                shopper.errors += 1
                continue
            if posted.status_code != 202 or answer.status_code not in (200, 404):
                shopper.errors += 1
            elif answer.status_code == 200 and answer.json()["event_id"] == event_id:
                shown = frozenset(
                    e["campaign_id"] for e in answer.json()["experiences"] if e["campaign_id"]
                )
                shopper.answers.append((answered, shown))
                shopper.latencies.append(answered - acked)
            else:
                shopper.answers.append((answered, frozenset()))
            self.stop.wait(self.interval)

    def watch_tree(self) -> None:
        """The retailer's default tree read every 20 ms: when a change was compiled in."""
        from shared.decisions.bigtable_state import BigtableTrees
        from shared.platform import clients
        from shared.system.resources import BIGTABLE_INSTANCE

        client = clients.bigtable_client(self.env["GOOGLE_CLOUD_PROJECT"])
        trees = BigtableTrees(client, BIGTABLE_INSTANCE, ttl_s=0.001)
        last: frozenset[str] | None = None
        while not self.stop.is_set():
            tree = trees.default(self.retailer)
            live = frozenset(tree.campaigns) if tree else frozenset()
            if live != last:
                self.tree_changes.append((time.monotonic(), live))
                last = live
            self.stop.wait(0.02)

    def tree_written(self, campaign_id: str, since: float, present: bool) -> float | None:
        for at, live in self.tree_changes:
            if at >= since and (campaign_id in live) == present:
                return at - since
        return None

    def trial(self, number: int, watch_s: float) -> dict[str, float]:
        from shared.campaigns.model import Campaign

        now = datetime.now(UTC)
        created = self.campaigns(
            "POST",
            "",
            {
                "name": f"Bench live {number}",
                "retailer_ids": [self.retailer],
                "experience_type": "personalized_promotion",
                "status": "active",
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(days=1)).isoformat(),
                "targeted_product_ids": [self.product],
                "control_share": 0,
            },
        )
        activated = time.monotonic()
        campaign_id = created["campaign_id"]
        default, personal, known = self.shoppers
        # The known shopper's "nightly" tree holds the campaign from now on.
        self.personal_tree(known, [Campaign.model_validate(created)], datetime.now(UTC))
        first: dict[str, float] = {}
        deadline = activated + 60
        while len(first) < 2 and time.monotonic() < deadline:
            for shopper in (default, personal):
                seen = shopper.shown_since(campaign_id, activated)
                if seen and shopper.name not in first:
                    first[shopper.name] = seen[0] - activated
            time.sleep(0.05)
        while not known.shown_since(campaign_id, time.monotonic() - 1) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        self.campaigns("POST", f"/{campaign_id}/pause")
        paused = time.monotonic()
        time.sleep(watch_s)
        last = {
            s.name: max([at - paused for at in s.shown_since(campaign_id, paused)], default=0.0)
            for s in self.shoppers
        }
        self.campaigns("POST", f"/{campaign_id}/archive")
        compiled_in = self.tree_written(campaign_id, activated, True)
        compiled_out = self.tree_written(campaign_id, paused, False)
        missing = {"default", "personal"} - set(first)
        if missing:
            raise RuntimeError(f"trial {number}: never shown to {sorted(missing)} within 60 s")
        return {
            **{f"first_shown_{name}": seconds for name, seconds in first.items()},
            **{f"last_shown_{name}": seconds for name, seconds in last.items()},
            # The part of it spent before the default tree held the change.
            **({"tree_recompiled_activate": compiled_in} if compiled_in is not None else {}),
            **({"tree_recompiled_pause": compiled_out} if compiled_out is not None else {}),
        }

    def cleanup(self) -> None:
        from google.cloud.firestore_v1.base_query import FieldFilter

        from shared.campaigns.admin import hash_key
        from shared.campaigns.firestore_admin import ACCOUNTS
        from shared.platform import clients
        from shared.retailers.firestore_api_keys import COLLECTION as API_KEYS
        from shared.retailers.keys import hash_api_key
        from shared.system.resources import CREDENTIALS_DATABASE

        project = self.env["GOOGLE_CLOUD_PROJECT"]
        firestore = clients.firestore_client(project)
        query = firestore.collection("campaigns").where(
            filter=FieldFilter("retailer_ids", "array_contains", self.retailer)
        )
        for snapshot in query.stream():
            snapshot.reference.delete()
        firestore.collection("retailers").document(self.retailer).delete()
        credentials = clients.firestore_client(project, CREDENTIALS_DATABASE)
        credentials.collection(API_KEYS).document(hash_api_key(self.api_key)).delete()
        credentials.collection(ACCOUNTS).document(hash_key(self.csm_key)).delete()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.5), 3),
        "p95": round(percentile(values, 0.95), 3),
        "max": round(max(values, default=0.0), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.1, help="s between a shopper's events")
    parser.add_argument("--watch", type=float, default=8.0, help="s watched after each pause")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    env = stack_env(StackSettings())
    bench = Bench(env, args.interval)
    # "Last night": before any of the bench's campaigns existed.
    bench.personal_tree(bench.shoppers[1], [], datetime.now(UTC) - timedelta(hours=6))
    threads = [threading.Thread(target=bench.loop, args=(s,), daemon=True) for s in bench.shoppers]
    threads.append(threading.Thread(target=bench.watch_tree, daemon=True))
    for thread in threads:
        thread.start()
    trials: list[dict[str, float]] = []
    try:
        time.sleep(2)  # the loops warm up
        for number in range(1, args.trials + 1):
            trials.append(bench.trial(number, args.watch))
            t = trials[-1]
            print(
                f"trial {number:>3}/{args.trials}: first shown default "
                f"{t['first_shown_default']:.2f} s, personal {t['first_shown_personal']:.2f} s; "
                f"last shown after pause: known {t['last_shown_known']:.2f} s, default "
                f"{t['last_shown_default']:.2f} s",
                file=sys.stderr,
            )
    finally:
        bench.stop.set()
        for thread in threads:
            thread.join(timeout=15)
        bench.cleanup()
    keys = sorted({k for t in trials for k in t})
    floor = [latency for s in bench.shoppers for latency in s.latencies]
    report = {
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).date().isoformat(),
        },
        "trials": len(trials),
        "interval_s": args.interval,
        "figures": {k: summary([t[k] for t in trials if k in t]) for k in keys},
        "floor_event_to_experience": summary(floor),
        "errors": sum(s.errors for s in bench.shoppers),
        "decider_ttl_s": 2.0,
    }
    print(f"\n{'':<28}{'n':>4}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    rows = [
        *report["figures"].items(),
        ("floor: event -> experience", report["floor_event_to_experience"]),
    ]
    for name, figure in rows:
        print(
            f"{name:<28}{figure['n']:>4}{figure['p50']:>9.3f}{figure['p95']:>9.3f}{figure['max']:>9.3f}"
        )
    print(f"errors: {report['errors']}; target: p95 < 10 s for first and last shown")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
