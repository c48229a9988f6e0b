"""The CSM's pages with a big portfolio: the portfolio and the campaign list, p95 < 300 ms.

``python -m bench.back_office [--campaigns 1000] [--requests 200] [--json PATH]``

On the running stack, a CSM scoped to ten retailers of the bench's own, with
``--campaigns`` campaigns created through the campaigns API (8 at a time; retailers,
brands, experience types and statuses cycle; each targets a brand the read models know),
the portfolio's figures computed once (``refresh_campaign_stats``), then a logged-in
browser session (the same cookie and pages as a CSM's) asks, one request at a time:

- ``portfolio``: ``/portfolio`` (every campaign's alerts);
- ``list``: ``/campaigns`` with a rotation of what CSMs do: no filter, a brand and a status,
  a search, a sort by uplift, a later page, a retailer at 100 a page;
- ``list_csv``: ``/campaigns.csv`` (every campaign) — not a target, for the record.

Beside them, in the same run:

- the floor: ``/assets/preview.js``, a static file of the same function (no session, no
  store): what any page costs on this stack;
- the baseline: reading every campaign from Firestore (``FirestoreCampaignStore.all``),
  what each page would cost without the cached list (``CachedCampaigns``).

The bench's campaigns, retailers and key are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.freeze import stack_env
from emulators.config import ROOT, StackSettings
from shared.demo.probes import percentile

TIMEOUT = 60
RETAILERS = 10
BRANDS = ("Acme", "Bolt", "Cerise", "Dune", "Epi", "Fjord", "Gala", "Hive", "Iris", "Jade")
TYPES = ("personalized_promotion", "tension_cart", "product_recommendation")
TARGET_S = 0.300
BEGIN, END = "<!-- back-office-bench:begin -->", "<!-- back-office-bench:end -->"


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(1000 * percentile(values, 0.5), 1),
        "p95_ms": round(1000 * percentile(values, 0.95), 1),
        "p99_ms": round(1000 * percentile(values, 0.99), 1),
        "max_ms": round(1000 * max(values, default=0.0), 1),
    }


class Bench:
    def __init__(self, env: dict[str, str], campaigns: int) -> None:
        from shared.campaigns.admin import issue_csm_key
        from shared.campaigns.firestore_admin import FirestoreCsmAccounts
        from shared.platform import clients
        from shared.system.resources import CREDENTIALS_DATABASE

        self.env = env
        self.url = env["CAMPAIGNS_URL"]
        self.count = campaigns
        self.suffix = uuid.uuid4().hex[:8]
        self.retailers = [f"bo{k}-{self.suffix}" for k in range(RETAILERS)]
        self.project = env["GOOGLE_CLOUD_PROJECT"]
        self.firestore = clients.firestore_client(self.project)
        for retailer in self.retailers:
            self.firestore.collection("retailers").document(retailer).set({"name": retailer})
        credentials = clients.firestore_client(self.project, CREDENTIALS_DATABASE)
        self.accounts = FirestoreCsmAccounts(credentials)
        self.key = issue_csm_key(
            self.accounts, f"bench-{self.suffix}", "csm", self.retailers, datetime.now(UTC)
        )
        self.created: list[str] = []

    def brand(self, i: int) -> str:
        return f"bb-{self.suffix}-{i:04}"

    def seed(self) -> None:
        """The brands the campaigns target, known at their retailers (basket rows)."""
        from shared.platform import clients

        now = datetime.now(UTC).isoformat()
        bq = clients.bigquery_client(self.project, self.env["BIGQUERY_EMULATOR_HOST"])
        rows = [
            {
                "row_id": str(uuid.uuid4()),
                "event_id": str(uuid.uuid4()),
                "retailer_id": self.retailers[i % RETAILERS],
                "shopper_id": "s1",
                "session_id": None,
                "occurred_at": now,
                "ingested_at": now,
                "product_id": f"bp-{self.suffix}-{i:04}",
                "brand": self.brand(i),
                "category": "dairy",
                "change": "added",
                "quantity": 1,
                "unit_price": "1.5",
                "amount": "1.5",
            }
            for i in range(self.count)
        ]
        table = f"{self.project}.cartwise.basket_changes"
        for start in range(0, len(rows), 5000):
            assert bq.insert_rows_json(table, rows[start : start + 5000], timeout=TIMEOUT) == []

    def body(self, i: int) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "campaign_id": f"b{i:04}",
            "name": f"Bench {i:04} {BRANDS[i % len(BRANDS)]}",
            "brand": BRANDS[i % len(BRANDS)],
            "retailer_ids": [self.retailers[i % RETAILERS]],
            "experience_type": TYPES[i % len(TYPES)],
            "status": "active" if i % 5 else "draft",
            "starts_at": (now - timedelta(days=1 + i % 5)).isoformat(),
            "ends_at": (now + timedelta(days=2 + i % 40)).isoformat(),
            "targeted_brands": [self.brand(i)],
            "threshold": "10",
            "reward": "a gift",
            **({"budget": str(100 + i)} if i % 4 == 0 else {}),
        }

    def create(self) -> float:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.key}"}
        done = 0
        clock = time.perf_counter()

        def one(i: int) -> str:
            nonlocal done
            for attempt in range(3):
                answer = session.post(
                    f"{self.url}/v1/campaigns", json=self.body(i), headers=headers, timeout=TIMEOUT
                )
                if answer.status_code != 503 or attempt == 2:
                    break
                time.sleep(1)
            if answer.status_code != 201:
                raise RuntimeError(f"create {i}: {answer.status_code} {answer.text[:300]}")
            done += 1
            if done % 100 == 0:
                rate = done / (time.perf_counter() - clock)
                print(f"  {done:>5}/{self.count} created ({rate:.0f}/s)", file=sys.stderr)
            return str(answer.json()["campaign_id"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            self.created = list(pool.map(one, range(self.count)))
        return time.perf_counter() - clock

    def login(self) -> requests.Session:
        session = requests.Session()
        answer = session.post(
            f"{self.url}/login", data={"key": self.key}, timeout=TIMEOUT, allow_redirects=False
        )
        assert answer.status_code == 303, answer.text
        return session

    def timed(self, session: requests.Session, path: str) -> float:
        clock = time.perf_counter()
        answer = session.get(f"{self.url}{path}", timeout=TIMEOUT)
        elapsed = time.perf_counter() - clock
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")
        return elapsed

    def list_paths(self) -> list[str]:
        return [
            "/campaigns",
            "/campaigns?brand=Bolt&status=active",
            "/campaigns?q=0042",
            "/campaigns?sort=uplift&order=desc",
            "/campaigns?page=7",
            f"/campaigns?retailer={self.retailers[3]}&per_page=100",
        ]

    def cleanup(self) -> None:
        from tests.integration.campaign_cleanup import remove

        remove(self.env, campaign_ids=self.created, keys=[self.key], retailers=self.retailers)


def write_docs(report: dict[str, Any]) -> None:
    f = report["figures"]
    rows = [
        ("portfolio `/portfolio`", f["portfolio"]),
        ("list `/campaigns` (6 views in turn)", f["list"]),
        ("list export `/campaigns.csv` (all)", f["list_csv"]),
        ("floor: a static file of the function", f["floor_static"]),
        ("baseline: every campaign read from Firestore", f["baseline_full_read"]),
    ]
    lines = [
        BEGIN,
        f"Run of {report['machine']['date']} on {report['machine']['cores']} cores "
        f"({report['machine']['platform']}): {report['campaigns']:,} campaigns of one CSM "
        f"over {RETAILERS} retailers, created through the API in {report['create_s']:.0f} s; "
        f"figures job {report['stats_job_s']:.1f} s.",
        "",
        "| page | n | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        *(
            f"| {name} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['max_ms']} |"
            for name, s in rows
        ),
        "",
        f"Target p95 < {TARGET_S * 1000:.0f} ms: portfolio "
        f"{'met' if f['portfolio']['p95_ms'] < TARGET_S * 1000 else 'NOT met'}, list "
        f"{'met' if f['list']['p95_ms'] < TARGET_S * 1000 else 'NOT met'}.",
        END,
    ]
    path = ROOT / "docs" / "BENCHMARKS.md"
    text = path.read_text()
    block = "\n".join(lines)
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text += (
            "\n## `make bench-back-office`: the CSM's pages with 1,000 campaigns (issue 25)\n\n"
            + block
            + "\n"
        )
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200, help="per page kind")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--docs", action="store_true", help="write docs/BENCHMARKS.md")
    args = parser.parse_args()
    env = stack_env(StackSettings())
    bench = Bench(env, args.campaigns)
    try:
        print(f"seeding {args.campaigns:,} brands at {RETAILERS} retailers ...", file=sys.stderr)
        bench.seed()
        print(f"creating {args.campaigns:,} campaigns through the API ...", file=sys.stderr)
        create_s = bench.create()
        clock = time.perf_counter()
        refreshed = requests.post(env["CAMPAIGN_STATS_URL"], timeout=600)
        refreshed.raise_for_status()
        stats_s = time.perf_counter() - clock
        print(f"figures job: {refreshed.json()} in {stats_s:.1f} s", file=sys.stderr)
        session = bench.login()
        for path in ("/portfolio", *bench.list_paths()):
            bench.timed(session, path)  # warm: the first listing reads the list
        figures: dict[str, list[float]] = {
            "portfolio": [],
            "list": [],
            "list_csv": [],
            "floor_static": [],
            "baseline_full_read": [],
        }
        paths = bench.list_paths()
        for i in range(args.requests):
            figures["portfolio"].append(bench.timed(session, "/portfolio"))
            figures["list"].append(bench.timed(session, paths[i % len(paths)]))
            figures["floor_static"].append(bench.timed(session, "/assets/preview.js"))
            if i % 10 == 0:
                figures["list_csv"].append(bench.timed(session, "/campaigns.csv"))
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{args.requests} rounds", file=sys.stderr)
        from shared.campaigns.firestore_campaigns import FirestoreCampaignStore

        store = FirestoreCampaignStore(bench.firestore)
        for _ in range(20):
            clock = time.perf_counter()
            store.all()
            figures["baseline_full_read"].append(time.perf_counter() - clock)
    finally:
        bench.cleanup()
    report = {
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).date().isoformat(),
        },
        "campaigns": args.campaigns,
        "create_s": round(create_s, 1),
        "stats_job_s": round(stats_s, 2),
        "figures": {name: summary(values) for name, values in figures.items()},
        "target_p95_ms": TARGET_S * 1000,
    }
    print(f"\n{'':<22}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, s in report["figures"].items():
        print(
            f"{name:<22}{s['n']:>5}{s['p50_ms']:>9}{s['p95_ms']:>9}{s['p99_ms']:>9}{s['max_ms']:>9}"
        )
    print(f"target: p95 < {TARGET_S * 1000:.0f} ms for portfolio and list")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    if args.docs:
        write_docs(report)


if __name__ == "__main__":
    main()
